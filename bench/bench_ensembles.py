"""How long ensemble selection takes: exact enumeration against branch and bound.

Random profiles (seeded: per-class accuracy, confidence, latency, throughput, cost, energy)
and a contract weighting six metrics with mixed aggregations and log/linear scales, under a
deadline that excludes some services and a throughput that needs several replicas. For each
number of services n, over several seeds: the time of the exact enumeration (while the number
of ensembles stays under ``--exact-max``), the time and nodes of the branch and bound, whether
it proved optimality, and its gap to the exact optimum (or its own reported gap where the exact
optimum is out of reach). Medians are printed and written to ``build/bench/ensembles.json``.

    .venv/bin/python bench/bench_ensembles.py [--sizes 8 16 32] [--seeds 5] [--max-nodes 1000000]
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

from harmonia.orchestration.ensembles import (
    ConsumerContract,
    ServiceProfile,
    count_ensembles,
    select_ensemble,
)

CLASSES = ("car", "person", "bike", "truck")


def profiles(n: int, seed: int) -> list[ServiceProfile]:
    rng = random.Random(seed)
    return [
        ServiceProfile(
            name=f"model-{i}",
            node=f"node-{i % 4}",
            accuracy={c: rng.uniform(0.55, 0.98) for c in CLASSES},
            confidence=rng.uniform(0.5, 0.95),
            latency_ms=rng.uniform(5, 150),
            throughput_rps=rng.uniform(5, 80),
            cost=rng.uniform(0.2, 3.0),
            energy_j=rng.uniform(0.01, 1.5),
        )
        for i in range(n)
    ]


CONTRACT = ConsumerContract.model_validate(
    {
        "metrics": {
            "accuracy": {"bounds": (0.6, 0.9999), "scale": "log", "weight": 1.5},
            "miss_rate[person]": {"bounds": (1e-5, 0.2), "scale": "log", "weight": 1.0},
            "confidence": {"bounds": (0.5, 1.0), "weight": 0.5},
            "cost": {"bounds": (0.5, 80), "scale": "log", "weight": 1.5},
            "energy_j": {"bounds": (0.01, 6), "weight": 0.5},
            "latency_ms": {"bounds": (10, 120), "weight": 0.3},
        },
        "deadline_ms": 120,
        "throughput_rps": 50,
        "aggregation_ms": 3,
    }
)


def timed(**kwargs: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = select_ensemble(**kwargs)
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 16, 32])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--max-nodes", type=int, default=1_000_000)
    parser.add_argument("--exact-max", type=int, default=2**20)
    parser.add_argument("--out", type=Path, default=Path("build/bench/ensembles.json"))
    args = parser.parse_args()
    rows = []
    for n in args.sizes:
        exact_s, search_s, nodes, gaps, proved = [], [], [], [], 0
        ensembles = count_ensembles([1] * n, 1, n)
        for seed in range(args.seeds):
            candidates = profiles(n, seed)
            t_search, found = timed(
                services=candidates, contract=CONTRACT, method="search", max_nodes=args.max_nodes
            )
            search_s.append(t_search)
            nodes.append(found.explored)
            proved += found.optimal
            if ensembles <= args.exact_max:
                t_exact, exact = timed(services=candidates, contract=CONTRACT, method="exact")
                exact_s.append(t_exact)
                gaps.append(exact.utility - found.utility)
            else:
                gaps.append(found.gap)
        row = {
            "n": n,
            "ensembles": ensembles,
            "exact_s": statistics.median(exact_s) if exact_s else None,
            "search_s": statistics.median(search_s),
            "search_nodes": statistics.median(nodes),
            "proved_optimal": f"{proved}/{args.seeds}",
            "max_gap": max(gaps),
            "gap_is": "to the exact optimum" if exact_s else "reported by the search",
        }
        rows.append(row)
        exact = f"{row['exact_s']:.3f} s" if exact_s else "—"
        print(
            f"n={n:3d}  ensembles={ensembles:>12,}  exact {exact:>9}  "
            f"search {row['search_s']:.3f} s ({row['search_nodes']:,.0f} nodes)  "
            f"optimal {row['proved_optimal']}  max gap {row['max_gap']:.2g} ({row['gap_is']})"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {"python": platform.python_version(), "machine": platform.machine(), "rows": rows}
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
