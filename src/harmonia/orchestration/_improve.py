"""Consolidation: empty lightly loaded nodes into the others, a local search that any plan
can go through when nodes in use cost (the nodes and energy objectives).

Nodes are tried from the least loaded up; a node is emptied only if every one of its
replicas fits on another node already in use (the tightest that takes it, as best fit
would), and, for energy, only if the power saved exceeds what the moved replicas add
elsewhere. Every move keeps the plan sound: it goes through the same checks as placement.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from harmonia.orchestration._cluster import ClusterState
from harmonia.orchestration._nodes import Node
from harmonia.orchestration._plan import Objective, Placement
from harmonia.orchestration._services import ServiceRequirement


def _power_delta(
    nodes: Sequence[Node], service: ServiceRequirement, source: int, target: int
) -> float:
    """Watts a replica adds moving from ``source`` to ``target`` (both staying on)."""

    def dynamic(n: int) -> float:
        node = nodes[n]
        if node.power is None or not node.cpu_millicores:
            return 0.0
        span = node.power.peak_w - node.power.idle_w
        return span * service.cpu_millicores / node.cpu_millicores

    return dynamic(target) - dynamic(source)


def consolidate(
    nodes: Sequence[Node],
    services: Sequence[ServiceRequirement],
    placements: list[Placement],
    objective: Objective,
    deadline: float,
) -> tuple[list[Placement], int]:
    """``placements`` with as many nodes emptied as pays; returns them (in the order they
    were committed) and how many nodes were emptied."""
    if objective == "imbalance" or not placements:
        return placements, 0
    state = ClusterState(nodes, services)
    order = {s.name: i for i, s in enumerate(services)}
    node_at = {name: i for i, name in enumerate(state.names)}
    current: dict[tuple[str, int], Placement] = {}
    for p in placements:
        state.commit(order[p.service], node_at[p.node], list(p.cores), p.accelerator)
        current[(p.service, p.replica)] = p
    emptied = 0
    load = state.cpu_cap - state.cpu_free
    share = np.where(state.cpu_cap > 0, load / np.maximum(state.cpu_cap, 1), 0.0)
    for n in np.argsort(share, kind="stable"):
        n = int(n)
        if time.perf_counter() > deadline:
            break
        here = [p for p in current.values() if node_at[p.node] == n]
        if not here:
            continue
        moved = _empty(state, nodes, services, order, node_at, n, here, objective)
        if moved is None:
            continue
        for p in moved:
            current[(p.service, p.replica)] = p
        emptied += 1
    by_node: dict[str, list[Placement]] = {}
    for p in current.values():
        by_node.setdefault(p.node, []).append(p)
    return [p for name in state.names for p in by_node.get(name, [])], emptied


def _empty(
    state: ClusterState,
    nodes: Sequence[Node],
    services: Sequence[ServiceRequirement],
    order: dict[str, int],
    node_at: dict[str, int],
    n: int,
    here: list[Placement],
    objective: Objective,
) -> list[Placement] | None:
    """Move every replica of node ``n`` to other nodes in use, or change nothing (None)."""
    for p in here:
        state.release(order[p.service], n, list(p.cores), p.accelerator)
    in_use = state.hosted.sum(axis=0) > 0
    in_use[n] = False
    moved: list[Placement] = []
    added = 0.0
    ranked = sorted(here, key=lambda p: -services[order[p.service]].cpu_millicores)
    for p in ranked:
        s = order[p.service]
        ok, _ = state.assess(s)
        candidates = np.flatnonzero(ok & in_use)
        if len(candidates):
            candidates = candidates[np.argsort(state.residual(s)[candidates], kind="stable")]
        target = next((int(t) for t in candidates if state.cores_fit(s, int(t))), None)
        if target is None:
            break
        cores, device = state.commit(s, target)
        added += _power_delta(nodes, services[s], n, target)
        moved.append(
            Placement(
                service=p.service,
                replica=p.replica,
                node=state.names[target],
                cores=cores,
                accelerator=device,
            )
        )
    else:
        power = nodes[n].power
        idle = power.idle_w if power is not None else 0.0
        if objective != "energy" or added < idle:
            return moved
    # undo: take the moved replicas back, put the node's replicas back as they were
    for m in moved:
        state.release(order[m.service], node_at[m.node], list(m.cores), m.accelerator)
    for p in here:
        state.commit(order[p.service], n, list(p.cores), p.accelerator)
    return None
