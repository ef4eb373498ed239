"""The replay lab's targets: the whole matrix of one menu in under two minutes, and how
``harmonia`` compares with ``harmone``, the oracle frontier and single-LSTM.

Models are trained on first use (timed apart, not counted in the matrix time). Prints the
figures and writes ``build/bench/replay.json``; quote medians when ``--repeats`` > 1.

    .venv/bin/python bench/bench_replay.py [--menus harmonia,harmone] [--repeats 1]
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
from harmonia.replay.approaches import APPROACHES
from harmonia.replay.lab import prepare, run_lab
from harmonia.replay.results import ReplayResult

MATRIX_SECONDS = 120.0


def frontier_r2(result: ReplayResult, energy: float) -> float:
    """The best R² the oracle reaches with at most ``energy`` per inference."""
    reachable = [r2 for e, r2 in result.frontier if e <= energy + 1e-15]
    return max(reachable) if reachable else float("nan")


def targets(result: ReplayResult) -> dict[str, bool | float]:
    ours, theirs = result.approach("harmonia"), result.approach("harmone")
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
    parser.add_argument("--menus", default="harmonia,harmone")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--data-dir", type=Path, default=Path(".harmonia"))
    parser.add_argument("--out", type=Path, default=Path("build/bench/replay.json"))
    args = parser.parse_args()

    report = {"machine": platform.platform(), "python": platform.python_version(), "menus": {}}
    for menu in args.menus.split(","):
        started = time.perf_counter()
        prepare(args.data_dir, menu, auto_meter()[0])  # type: ignore[arg-type]
        training = time.perf_counter() - started
        times, runs = [], []
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory() as out:
                started = time.perf_counter()
                run = run_lab(APPROACHES, menu=menu, out=Path(out), data_dir=args.data_dir)  # type: ignore[arg-type]
                times.append(time.perf_counter() - started)
                runs.append(run.result)
        result = runs[-1]
        median = statistics.median(times)
        checks = targets(result)
        report["menus"][menu] = {
            "first_use_training_s": training,
            "matrix_s": times,
            "matrix_median_s": median,
            "matrix_under_2_min": median < MATRIX_SECONDS,
            "targets": checks,
            "approaches": [a.row() for a in result.approaches],
            "frontier": result.frontier,
        }
        print(
            f"\n{menu} menu: matrix {median:.1f} s (median of {len(times)}: "
            f"{', '.join(f'{t:.1f}' for t in times)}); first-use training {training:.1f} s"
        )
        header = ("approach", "mJ/inference", "R²", "switch", "retrain", "reuse")
        print("{:24s} {:>12s} {:>8s} {:>6s} {:>7s} {:>5s}".format(*header))
        for a in result.approaches:
            print(
                f"{a.approach:24s} {a.energy_j_per_inference * 1e3:12.4f} {a.r2:8.4f} "
                f"{a.switches:6d} {a.retrains:7d} {a.reuses:5d}"
            )
        for name, value in checks.items():
            print(f"  {name}: {value}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
