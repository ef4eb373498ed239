"""Probe overhead on the calling thread: the cost of one ``probe.measure`` block around a
no-op, with the background sender running against an in-memory transport.

    .venv/bin/python bench/bench_probe.py [--calls 200000] [--repeats 5]

Prints the median over repeats of the mean µs per block and writes build/bench/probe.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

from harmonia.sdk import InMemoryTransport, Probe


def accept(app: str, instance: str, samples: list[dict[str, Any]]) -> dict[str, Any]:
    return {"accepted": len(samples), "actions": []}


def once(calls: int) -> float:
    with Probe("bench", InMemoryTransport(accept), max_buffer=calls) as probe:
        started = time.perf_counter()
        for _ in range(calls):
            with probe.measure("linear", 1) as sample:
                sample.prediction = 1.0
                sample.target = 1.0
        elapsed = time.perf_counter() - started
    return elapsed / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("build/bench/probe.json"))
    args = parser.parse_args()
    runs = [once(args.calls) for _ in range(args.repeats)]
    result = {
        "machine": platform.platform(),
        "calls": args.calls,
        "us_per_measure_runs": runs,
        "us_per_measure_median": statistics.median(runs),
    }
    print(json.dumps(result, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
