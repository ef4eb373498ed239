"""The objectives a plan is judged by, computed from the plan alone, so that every placer's
plan is measured the same way.

- ``nodes``: how many nodes run at least one replica;
- ``energy``: the power the placement draws, in watts: for every node in use, its idle power
  plus its CPU utilisation times the span between idle and peak (nodes in no use are taken
  to be off);
- ``imbalance``: the dominant share of the most loaded node (the larger of its CPU and
  memory utilisation, 0 to 1); lower means the load is spread more evenly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from harmonia.orchestration._nodes import Node
from harmonia.orchestration._plan import Objective, Placement
from harmonia.orchestration._services import ServiceRequirement


def node_loads(
    nodes: Sequence[Node], services: Sequence[ServiceRequirement], placements: Sequence[Placement]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CPU (millicores), memory (MiB) and replica count placed on each node."""
    node_at = {node.name: i for i, node in enumerate(nodes)}
    by_name = {s.name: s for s in services}
    cpu = np.zeros(len(nodes), dtype=np.int64)
    mem = np.zeros(len(nodes), dtype=np.int64)
    replicas = np.zeros(len(nodes), dtype=np.int64)
    for placement in placements:
        n = node_at[placement.node]
        service = by_name[placement.service]
        cpu[n] += service.cpu_millicores
        mem[n] += service.memory_mib
        replicas[n] += 1
    return cpu, mem, replicas


def _share(used: int, capacity: int) -> float:
    return used / capacity if capacity > 0 else 0.0


def objective_value(
    objective: Objective,
    nodes: Sequence[Node],
    services: Sequence[ServiceRequirement],
    placements: Sequence[Placement],
) -> float:
    """The value of ``objective`` for ``placements`` (lower is better)."""
    cpu, mem, replicas = node_loads(nodes, services, placements)
    if objective == "nodes":
        return float(np.count_nonzero(replicas))
    if objective == "energy":
        watts = 0.0
        for i, node in enumerate(nodes):
            if replicas[i] == 0:
                continue
            if node.power is None:
                raise ValueError(f"node {node.name} has no power model")
            watts += node.power.watts(_share(int(cpu[i]), node.cpu_millicores))
        return round(watts, 6)
    if objective == "imbalance":
        shares = [
            max(_share(int(cpu[i]), n.cpu_millicores), _share(int(mem[i]), n.memory_mib))
            for i, n in enumerate(nodes)
        ]
        return round(max(shares, default=0.0), 9)
    raise ValueError(f"unknown objective {objective!r}")


def better(a: tuple[int, float], b: tuple[int, float]) -> bool:
    """Whether (unplaced replicas, objective value) ``a`` beats ``b``: fewer replicas left
    out first, then the lower objective."""
    return (a[0], a[1]) < (b[0], b[1])
