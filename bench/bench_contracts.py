"""How much one contract evaluation costs: 50 SLOs over a 10,000-sample window.

A 3-stage pipeline (ingest → classify with 3 instances, one slow → aggregate) sends one
trace per 10 ms. Measured, as medians over repeats: grouping the window's rows into arrays
once (`harmonia.core.contracts.frame`), evaluating 50 SLOs on that frame (service, stage and
end-to-end SLOs mixing percentiles, rates, throughput, availability, energy and carbon, half
of them violated so the explanations are included), and both together. Prints the figures
and writes ``build/bench/contracts.json``.

    .venv/bin/python bench/bench_contracts.py [--samples 10000] [--repeats 20]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import time
from pathlib import Path
from typing import Any

from harmonia.core.application import Application
from harmonia.core.contracts import Contract, evaluate, frame

APP = Application.model_validate(
    {
        "name": "bench",
        "stages": [
            {"name": "ingest", "services": [{"name": "camera", "models": ["raw"]}]},
            {
                "name": "classify",
                "after": ["ingest"],
                "services": [{"name": "cnn", "models": ["m"]}],
            },
            {
                "name": "aggregate",
                "after": ["classify"],
                "services": [{"name": "vote", "models": ["m"]}],
            },
        ],
    }
)
NODES = {"classify-1": "edge-0", "classify-2": "edge-1", "classify-3": "edge-2"}
TEMPLATES = [
    ("end_to_end", None, "p99(latency_ms) <= {}", (150, 400)),
    ("end_to_end", None, "energy_j <= {}", (0.1, 0.5)),
    ("end_to_end", None, "throughput >= {}", (50, 200)),
    ("end_to_end", None, "availability >= {}", (0.9, 0.999)),
    ("end_to_end", None, "co2_g <= {}", (1e-5, 1e-4)),
    ("stage", "classify", "p95(latency_ms) <= {}", (100, 400)),
    ("stage", "aggregate", "mean(correct) >= {}", (0.8, 0.95)),
    ("service", "vote", "rate(error) < {}", (0.01, 0.1)),
    ("service", "cnn", "p50(latency_ms) <= {} and mean(confidence) >= 0.5", (30, 80)),
    ("service", "camera", "max(latency_ms) <= {}", (5, 50)),
]


def rows(samples: int, seed: int = 1) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    trace = 0
    while len(out) < samples:
        clock = 1000.0 + trace * 0.01
        instance = f"classify-{trace % 3 + 1}"
        for service, inst, latency in (
            ("camera", "ingest-1", 5 + rng.expovariate(1.0)),
            ("cnn", instance, 40 + rng.expovariate(0.2) + (300 if instance == "classify-2" else 0)),
            ("vote", "vote-1", 3 + rng.expovariate(1.0)),
        ):
            clock += latency / 1000
            out.append(
                {
                    "service": service,
                    "instance": inst,
                    "model": "m",
                    "trace_id": f"t{trace}",
                    "ts": clock,
                    "latency_ms": latency,
                    "energy_j": 0.05 + rng.random() * 0.1,
                    "prediction": 1,
                    "target": int(rng.random() < 0.9),
                    "metrics": {"confidence": rng.random(), "error": float(rng.random() < 0.02)},
                }
            )
        trace += 1
    return out[:samples]


def contract(count: int, window: str) -> Contract:
    slos = []
    for i in range(count):
        scope, target, condition, (low, high) = TEMPLATES[i % len(TEMPLATES)]
        threshold = low if (i // len(TEMPLATES)) % 2 == 0 else high
        slos.append(
            {
                "name": f"slo-{i}",
                "scope": scope,
                "target": target,
                "condition": condition.format(threshold),
            }
        )
    return Contract.model_validate({"application": "bench", "window": window, "slos": slos})


def median_ms(work: Any, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--slos", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--out", type=Path, default=Path("build/bench/contracts.json"))
    args = parser.parse_args()
    window_rows = rows(args.samples)
    the_contract = contract(args.slos, f"{args.samples} samples")
    data = frame(APP, window_rows)
    results = evaluate(the_contract, APP, data, nodes=NODES)
    violated = sum(r.status == "violated" for r in results)
    # a fresh frame each time for the SLO figure: its per-window selection cache is part of it
    frames = [frame(APP, window_rows) for _ in range(args.repeats)]
    grouping = median_ms(lambda: frame(APP, window_rows), args.repeats)
    it = iter(frames)
    slos = median_ms(lambda: evaluate(the_contract, APP, next(it), nodes=NODES), args.repeats)
    total = median_ms(lambda: evaluate(the_contract, APP, window_rows, nodes=NODES), args.repeats)
    report = {
        "samples": args.samples,
        "slos": args.slos,
        "violated": violated,
        "repeats": args.repeats,
        "frame_ms": round(grouping, 3),
        "evaluate_on_frame_ms": round(slos, 3),
        "evaluate_from_rows_ms": round(total, 3),
        "target_ms": 5.0,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    print(
        f"{args.slos} SLOs over {args.samples} samples ({violated} violated, explained): "
        f"group rows {grouping:.2f} ms, evaluate {slos:.2f} ms, both {total:.2f} ms "
        f"(median of {args.repeats})"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
