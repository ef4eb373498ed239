"""Suites of generated streams: is ``harmonia`` ever dominated by a fixed configuration?

For traffic (both menus) and vision: the share of streams where ``harmonia`` is dominated
by a fixed configuration (lower quality and higher energy at once; target 0), its median
regret against the window oracle and against the best fixed configuration, and the wall
time of the suite (target: 30 streams under 10 minutes on a 2-core machine). Models are
trained on first use, before the clock starts. Prints the figures and writes
``build/bench/suite.json``.

With ``--noise N``, ``harmonia`` is also replayed over the suite's first N streams twice, once
as the machine is and once while a busy loop runs on every core, and the largest difference
in quality between the two is reported (target: at most 0.002: decisions must not follow
measurement noise). ``--approaches`` limits the suite to some approaches (the oracle always
runs; leaving out ``harmone`` leaves out most of the wall time, so the figure then says so).

    .venv/bin/python bench/bench_suite.py [--streams 30] [--seed 1] [--samples N]
        [--runs traffic:harmonia,traffic:harmone,vision:harmonia] [--noise 5]
        [--approaches harmonia,single-small,...] [--cluster tcp://HOST:8786]

With ``--cluster`` the suites' tasks run on that Dask scheduler (`harmonia.replay.cluster`)
instead of local processes; the models are trained here first, in ``--data-dir``, which the
cluster's workers must reach at the same path.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harmonia.energy import auto_meter
from harmonia.replay.approaches import ORACLE
from harmonia.replay.generators import generate, replay_stream
from harmonia.replay.lab import _quiet_torch, prepare
from harmonia.replay.references import is_fixed
from harmonia.replay.suite import run_suite, stream_seed
from harmonia.replay.systems import spec_for

SUITE_SECONDS = 600.0
TARGET_STREAMS = 30
NOISE_TARGET = 0.002


def _spin() -> None:
    while True:
        pass


@contextmanager
def busy_machine() -> Iterator[None]:
    """A busy loop on every core while the block runs (the "loaded machine")."""
    spinners = [
        multiprocessing.Process(target=_spin, daemon=True) for _ in range(os.cpu_count() or 1)
    ]
    for spinner in spinners:
        spinner.start()
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.join()


def harmonia_qualities(
    system: str, menu: str, data_dir: Path, seed: int, streams: int, samples: int | None
) -> list[float]:
    """The quality ``harmonia`` reaches on each of the suite's first ``streams`` streams,
    replayed one after the other in this process."""
    _quiet_torch()
    meter, _ = auto_meter()
    spec = spec_for(system)
    registry = spec.registry_for(data_dir, menu)
    qualities = []
    for k in range(streams):
        stream = replay_stream(generate(system, stream_seed(seed, k), samples))
        result = spec.run_approach("harmonia", stream, registry, menu, meter, seed=seed)
        qualities.append(result.quality)
    return qualities


def noise_check(
    system: str, menu: str, data_dir: Path, seed: int, streams: int, samples: int | None
) -> dict[str, object]:
    """``harmonia``'s quality per stream on the machine as it is and on a loaded one."""
    as_is = harmonia_qualities(system, menu, data_dir, seed, streams, samples)
    with busy_machine():
        loaded = harmonia_qualities(system, menu, data_dir, seed, streams, samples)
    worst = max(abs(a - b) for a, b in zip(as_is, loaded, strict=True))
    return {
        "streams": streams,
        "quality_as_is": as_is,
        "quality_loaded": loaded,
        "worst_difference": worst,
        "within_target": worst <= NOISE_TARGET,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=TARGET_STREAMS)
    parser.add_argument("--seed", type=int, default=1, help="suite seed (evaluation streams)")
    parser.add_argument("--samples", type=int, default=None, help="stream length (default)")
    parser.add_argument("--runs", default="traffic:harmonia,traffic:harmone,vision:harmonia")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--data-dir", type=Path, default=Path(".harmonia"))
    parser.add_argument("--out", type=Path, default=Path("build/bench/suite.json"))
    parser.add_argument("--keep", type=Path, default=None, help="write each suite's files here")
    parser.add_argument("--noise", type=int, default=0, help="streams for the idle/loaded check")
    parser.add_argument("--approaches", default=None, help="comma-separated (default: all)")
    parser.add_argument("--cluster", default=None, help="a Dask scheduler's address")
    args = parser.parse_args()
    approaches = args.approaches.split(",") if args.approaches else None
    meter, _ = auto_meter()
    figures: dict[str, dict[str, object]] = {}
    for run in args.runs.split(","):
        system, menu = run.split(":")
        prepare(args.data_dir, menu, meter, system=system)  # trained before the clock starts
        started = time.perf_counter()
        result = run_suite(
            system,
            args.streams,
            seed=args.seed,
            menu=menu,
            samples=args.samples,
            data_dir=args.data_dir,
            workers=args.workers,
            approaches=approaches,
            cluster=args.cluster,
        )
        seconds = time.perf_counter() - started
        if args.keep:
            result.write(args.keep / f"{system}-{menu}")
        ours = result.distribution["harmonia"]
        dominated = [s for s, rows in result.standings.items() if rows["harmonia"].dominated]
        clean = [f"{system}-{s['seed']}" for s in result.streams if not s["drifts"]]
        figures[run] = {
            "streams": args.streams,
            "samples": result.samples,
            "dominated_share": ours.dominated_share,
            "dominated_streams": dominated,
            "median_regret_oracle": ours.median_regret_oracle,
            "median_relative_regret_oracle": ours.median_relative_regret_oracle,
            "median_regret_best_fixed": ours.median_regret_best_fixed,
            "worst_regret_best_fixed": ours.worst_regret_best_fixed,
            "retrains_without_drift": ours.retrains_without_drift,
            "streams_without_drift": len(clean),
            "seconds": seconds,
            "seconds_for_30_streams": seconds * TARGET_STREAMS / args.streams,
            "under_10_minutes_for_30": seconds * TARGET_STREAMS / args.streams <= SUITE_SECONDS,
            "median_objective": {k: v.median_objective for k, v in result.distribution.items()},
            # every approach against the same references, for the comparison with harmonia
            "per_approach": {
                name: {
                    "dominated": d.dominated,
                    "median_regret_best_fixed": d.median_regret_best_fixed,
                    "worst_regret_best_fixed": d.worst_regret_best_fixed,
                    "median_relative_regret_oracle": d.median_relative_regret_oracle,
                    "median_energy_j_per_inference": d.median_energy_j_per_inference,
                }
                for name, d in result.distribution.items()
            },
            "approaches": "all" if approaches is None else approaches,
            "cluster": args.cluster,
        }
        if args.noise:
            check = noise_check(system, menu, args.data_dir, args.seed, args.noise, args.samples)
            figures[run]["noise"] = check
            print(
                f"{run}: harmonia on {args.noise} streams, as is and with every core busy: "
                f"quality differs by at most {check['worst_difference']:.4f} "
                f"(target {NOISE_TARGET})",
                flush=True,
            )
        print(
            f"{run}: {args.streams} streams of {result.samples} samples in {seconds:.0f} s; "
            f"harmonia dominated on {len(dominated)}/{args.streams} "
            f"({ours.dominated_share:.0%}), median regret vs oracle "
            f"{ours.median_regret_oracle:+.4f} ({ours.median_relative_regret_oracle:+.2%}), "
            f"vs best fixed {ours.median_regret_best_fixed:+.4f} "
            f"(worst {ours.worst_regret_best_fixed:+.4f}); retrains on clean streams "
            f"{ours.retrains_without_drift}",
            flush=True,
        )
        for name, other in result.distribution.items():
            if name not in ("harmonia", ORACLE) and not is_fixed(name):
                print(
                    f"{run}:   {name}: dominated on {other.dominated}/{args.streams}, median "
                    f"regret vs best fixed {other.median_regret_best_fixed:+.4f} "
                    f"(worst {other.worst_regret_best_fixed:+.4f})",
                    flush=True,
                )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "energy_source": meter.source,
        "suite_seed": args.seed,
        "targets": {
            "dominated_share": 0.0,
            "suite_seconds_30_streams": SUITE_SECONDS,
            "noise_quality_difference": NOISE_TARGET,
        },
        "runs": figures,
    }
    args.out.write_text(json.dumps(document, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
