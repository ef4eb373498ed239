"""How fast the pure engine decides: samples per second through ``observe`` + ``step``.

The replay lab runs every approach over the same stream, so the engine's own cost per
sample bounds how fast a whole comparison can be. Prints a table and writes
``build/bench/engine.json`` (medians over repeats).

    .venv/bin/python bench/bench_engine.py [--samples 20000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import time
from pathlib import Path

from harmonia.core.policy import parse_policy
from harmonia.core.telemetry import TelemetrySample
from harmonia.policies import build_engine

POLICIES = {
    "harmone, 200-sample windows, kl drift": {
        "strategy": "harmone",
        "window": 200,
        "boundaries": [{"when": "p95(latency_ms) > 50", "then": "switch_model"}],
    },
    "switch, 50-sample windows, 3 boundaries": {
        "strategy": "switch",
        "window": 50,
        "boundaries": [
            {"when": "quality < 0.8", "then": "switch_model"},
            {"when": "p99(latency_ms) > 50 or rate(error) > 0.1", "then": "switch_model"},
            {"when": "drift.psi > 0.2", "then": "reuse_or_retrain"},
        ],
    },
}


def stream(count: int) -> list[TelemetrySample]:
    rng = random.Random(0)
    samples = []
    for i in range(count):
        target = rng.gauss(100.0, 20.0)
        samples.append(
            TelemetrySample(
                app="bench",
                model="linear",
                ts=float(i),
                latency_ms=rng.uniform(1.0, 3.0),
                energy_j=0.001,
                prediction=target + rng.gauss(0.0, 5.0),
                target=target,
                drift_value=target,
                metrics={"error": float(rng.random() < 0.01)},
            )
        )
    return samples


def run_once(fields: dict, samples: list[TelemetrySample]) -> float:
    policy = parse_policy(
        {"policy": "bench", "system": "bench", "models": ["linear", "svm", "lstm"], **fields}
    )
    engine = build_engine(policy)
    knowledge = engine.new_knowledge()
    start = time.perf_counter()
    for sample in samples:
        knowledge.observe(sample)
        engine.step(knowledge, sample.ts)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("build/bench/engine.json"))
    args = parser.parse_args()

    samples = stream(args.samples)
    results = []
    for label, fields in POLICIES.items():
        times = [run_once(fields, samples) for _ in range(args.repeats)]
        median = statistics.median(times)
        results.append(
            {
                "case": label,
                "samples": args.samples,
                "repeats": args.repeats,
                "median_s": median,
                "min_s": min(times),
                "max_s": max(times),
                "samples_per_s": args.samples / median,
                "us_per_sample": 1e6 * median / args.samples,
            }
        )
        print(
            f"{label:42s} {args.samples / median:>10,.0f} samples/s  "
            f"{1e6 * median / args.samples:6.1f} µs/sample  (median of {args.repeats}, "
            f"spread {min(times):.3f}–{max(times):.3f} s)"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "machine": platform.platform(),
        "python": platform.python_version(),
        "results": results,
    }
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
