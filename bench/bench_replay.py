"""The replay lab's targets: the whole matrix of one menu in under two minutes, and how
``harmonia`` compares with ``harmone``, the oracle frontier and single-LSTM.

With ``--system vision``: the vision matrix in under three minutes, and whether ``harmonia``
dominates ``harmone`` (higher accuracy and less energy per inference in the same run).

Models are trained on first use (timed apart, not counted in the matrix time). Prints the
figures and writes ``build/bench/replay.json`` (``replay-vision.json``); quote medians when
``--repeats`` > 1.

    .venv/bin/python bench/bench_replay.py [--menus harmonia,harmone] [--repeats 1]
    .venv/bin/python bench/bench_replay.py --system vision
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

from harmonia.energy import auto_meter
from harmonia.replay.approaches import settings_for
from harmonia.replay.lab import prepare, run_lab
from harmonia.replay.results import ReplayResult

MATRIX_SECONDS = {"traffic": 120.0, "vision": 180.0}


def frontier_r2(result: ReplayResult, energy: float) -> float:
    """The best R² the oracle reaches with at most ``energy`` per inference."""
    reachable = [r2 for e, r2 in result.frontier if e <= energy + 1e-15]
    return max(reachable) if reachable else float("nan")


def targets(result: ReplayResult) -> dict[str, bool | float]:
    ours, theirs = result.approach("harmonia"), result.approach("harmone")
    if result.system == "vision":
        return {
            "harmonia_accuracy": ours.accuracy,
            "harmone_accuracy": theirs.accuracy,
            "harmonia_mj_per_inference": ours.energy_j_per_inference * 1e3,
            "harmone_mj_per_inference": theirs.energy_j_per_inference * 1e3,
            "harmonia_dominates_harmone": ours.accuracy > theirs.accuracy
            and ours.energy_j_per_inference < theirs.energy_j_per_inference,
        }
    lstm = result.approach("single-lstm")
    gap = frontier_r2(result, ours.energy_j_per_inference) - ours.r2
    if result.menu == "harmone":
        return {
            "harmonia_dominates_harmone": ours.r2 > theirs.r2
            and ours.energy_j_per_inference < theirs.energy_j_per_inference,
            "frontier_gap_r2": gap,
            "within_0.01_of_frontier": gap <= 0.01,
        }
    return {
        "harmonia_r2_at_least_single_lstm": ours.r2 >= lstm.r2,
        "energy_ratio_to_single_lstm": ours.energy_j_per_inference / lstm.energy_j_per_inference,
        "at_most_a_quarter_of_lstm_energy": ours.energy_j_per_inference
        <= lstm.energy_j_per_inference / 4,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", default="traffic", choices=["traffic", "vision"])
    parser.add_argument("--menus", default=None, help="traffic menus (default: both)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--data-dir", type=Path, default=Path(".harmonia"))
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--keep", type=Path, default=None, help="keep results and plots here")
    args = parser.parse_args()
    system = args.system
    menus = args.menus or ("harmonia,harmone" if system == "traffic" else "harmonia")
    out_file = args.out or Path(
        "build/bench/replay.json" if system == "traffic" else f"build/bench/replay-{system}.json"
    )
    approaches = settings_for(system).approaches
    limit = MATRIX_SECONDS[system]

    report = {
        "machine": platform.platform(),
        "python": platform.python_version(),
        "system": system,
        "menus": {},
    }
    for menu in menus.split(","):
        started = time.perf_counter()
        prepare(args.data_dir, menu, auto_meter()[0], system=system)
        training = time.perf_counter() - started
        times, runs = [], []
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory() as scratch:
                out = args.keep or Path(scratch)
                started = time.perf_counter()
                run = run_lab(approaches, system=system, menu=menu, out=out, data_dir=args.data_dir)
                times.append(time.perf_counter() - started)
                runs.append(run.result)
        result = runs[-1]
        median = statistics.median(times)
        checks = targets(result)
        report["menus"][menu] = {
            "first_use_training_s": training,
            "matrix_s": times,
            "matrix_median_s": median,
            "matrix_limit_s": limit,
            "matrix_within_limit": median < limit,
            "energy_per_model_mj": {k: v * 1e3 for k, v in result.energy_per_model.items()},
            "targets": checks,
            "approaches": [a.row() for a in result.approaches],
            "frontier": result.frontier,
        }
        print(
            f"\n{menu} menu: matrix {median:.1f} s (median of {len(times)}: "
            f"{', '.join(f'{t:.1f}' for t in times)}); first-use training {training:.1f} s"
        )
        label = "R²" if result.quality_metric == "r2" else result.quality_metric
        header = ("approach", "mJ/inference", label, "switch", "retrain", "reuse")
        print("{:24s} {:>12s} {:>8s} {:>6s} {:>7s} {:>5s}".format(*header))
        for a in result.approaches:
            print(
                f"{a.approach:24s} {a.energy_j_per_inference * 1e3:12.4f} {a.quality:8.4f} "
                f"{a.switches:6d} {a.retrains:7d} {a.reuses:5d}"
            )
        for name, value in checks.items():
            print(f"  {name}: {value}")
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out_file}")


if __name__ == "__main__":
    main()
