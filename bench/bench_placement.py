"""How good and how fast placement is: the heuristics against the optimal placer.

Generated clusters (`harmonia.orchestration.generate`: ROHE's Raspberry Pis, Jetsons and
servers, ROHE's example services) of 10, 100 and 1,000 nodes with 50, 500 and 5,000
replicas. For each size and objective: first-, best- and worst-fit (value, seconds, replicas
left out) and the optimal placer under a time limit (value, the solver's proven bound, the
gap between them, seconds, formulation); each heuristic's gap is measured against the same
bound. The target: 1,000 nodes x 5,000 replicas placed within 1 % of the solver's bound in
under 30 s. Prints a table and writes ``build/bench/placement.json``.

    .venv/bin/python bench/bench_placement.py [--objectives nodes,energy,imbalance]
        [--time-limit 25] [--grid] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from harmonia.orchestration import (
    BestFitPlacer,
    FirstFitPlacer,
    OptimalPlacer,
    Plan,
    WorstFitPlacer,
    plan_violations,
)
from harmonia.orchestration.generate import generate_cluster

SIZES = [(10, 50), (100, 500), (1000, 5000)]
TARGET = {"nodes": 1000, "replicas": 5000, "gap": 0.01, "seconds": 30.0}


def _gap(value: float, bound: float | None) -> float | None:
    if bound is None:
        return None
    return 0.0 if value <= 0 else max(0.0, (value - bound) / value)


def _row(plan: Plan, wall: float, bound: float | None, sound: bool) -> dict[str, Any]:
    return {
        "placer": plan.placer,
        "value": plan.objective.value,
        "unit": plan.objective.unit,
        "unplaced": len(plan.unplaced),
        "seconds": wall,
        "bound": bound,
        "gap": _gap(plan.objective.value, bound) if plan.placer != "optimal" else plan.gap,
        "status": plan.status,
        "sound": sound,
        "notes": plan.notes,
    }


def run_case(
    nodes: int, replicas: int, objective: str, time_limit: float, seed: int
) -> list[dict[str, Any]]:
    inventory, services = generate_cluster(nodes, replicas, seed=seed)
    plans = []
    for placer in (
        FirstFitPlacer(objective=objective),  # type: ignore[arg-type]
        BestFitPlacer(objective=objective),  # type: ignore[arg-type]
        WorstFitPlacer(objective=objective),  # type: ignore[arg-type]
        OptimalPlacer(objective=objective, time_limit_s=time_limit),  # type: ignore[arg-type]
    ):
        start = time.perf_counter()
        plan = placer.place(inventory, services)
        plans.append((plan, time.perf_counter() - start))
    bound = plans[-1][0].objective.bound
    rows = []
    for plan, wall in plans:
        sound = not plan_violations(inventory, services, plan)
        row = _row(plan, wall, bound, sound)
        row.update(nodes=nodes, replicas=replicas, objective=objective, seed=seed)
        rows.append(row)
    return rows


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objectives", default="nodes,energy,imbalance")
    parser.add_argument("--time-limit", type=float, default=25.0, help="the optimal placer's")
    parser.add_argument("--grid", action="store_true", help="every nodes x replicas pair")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("build/bench/placement.json"))
    args = parser.parse_args()

    sizes = [(n, r) for n, _ in SIZES for _, r in SIZES] if args.grid else SIZES
    results: list[dict[str, Any]] = []
    print(
        f"{'nodes':>6} {'replicas':>8} {'objective':>9} {'placer':>9} {'value':>12} "
        f"{'bound':>12} {'gap':>8} {'left out':>8} {'seconds':>8}  status"
    )
    for objective in args.objectives.split(","):
        for nodes, replicas in sizes:
            for row in run_case(nodes, replicas, objective, args.time_limit, args.seed):
                results.append(row)
                print(
                    f"{nodes:>6} {replicas:>8} {objective:>9} {row['placer']:>9} "
                    f"{row['value']:>12.4f} {_fmt(row['bound'], '>12.4f')} "
                    f"{_fmt(row['gap'] if row['gap'] is None else 100 * row['gap'], '>7.2f')}% "
                    f"{row['unplaced']:>8} {row['seconds']:>8.2f}  {row['status']}"
                    + ("" if row["sound"] else "  UNSOUND")
                )
    targets = [
        {
            "objective": r["objective"],
            "gap": r["gap"],
            "seconds": r["seconds"],
            "unplaced": r["unplaced"],
            "met": r["gap"] is not None
            and r["gap"] <= TARGET["gap"]
            and r["seconds"] < TARGET["seconds"]
            and r["unplaced"] == 0,
        }
        for r in results
        if r["placer"] == "optimal"
        and (r["nodes"], r["replicas"]) == (TARGET["nodes"], TARGET["replicas"])
    ]
    for target in targets:
        print(
            f"target 1000 x 5000, {target['objective']}: gap {_fmt(target['gap'], '.3%')} in "
            f"{target['seconds']:.1f} s -> {'met' if target['met'] else 'NOT met'}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "machine": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "time_limit_s": args.time_limit,
        "target": TARGET,
        "targets": targets,
        "results": results,
    }
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
