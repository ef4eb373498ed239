"""Fitting the solver's counts onto nodes: which node, which cores, which device.

The per-node model says how many replicas of each service go on each node; all of a node's
replicas are then fitted to its cores at once (`assign_cores`), and what does not fit is
placed by the greedy pass. The per-type model says how many go on each node type; they are
spread over the type's nodes in use, each replica to the least loaded (so each node gets the
mix the pooled model planned) or, on a second try, the fullest, and the better plan is kept.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from harmonia.orchestration._cluster import ClusterState
from harmonia.orchestration._cores import assign_cores
from harmonia.orchestration._greedy import Item, Rule, place_replicas, service_order
from harmonia.orchestration._nodes import Node
from harmonia.orchestration._objectives import better, objective_value
from harmonia.orchestration._plan import Objective, Placement, Unplaced
from harmonia.orchestration._services import ServiceRequirement

if TYPE_CHECKING:  # the solver's module imports ortools, an extra
    from harmonia.orchestration._cpsat import SolveResult

#: how a replica is placed where the solver's model does not say exactly where
REPAIR_RULE: dict[Objective, Rule] = {"nodes": "best", "energy": "best", "imbalance": "worst"}


def fit_counts(
    nodes: Sequence[Node],
    services: Sequence[ServiceRequirement],
    result: SolveResult,
    objective: Objective,
) -> tuple[list[Placement], list[Unplaced], int]:
    """Placements and unplaced replicas from the solver's counts, and how many replicas
    went elsewhere than the model said."""
    rules: tuple[Rule, ...] = ("worst", "best") if result.formulation == "types" else ("best",)
    best: tuple[list[Placement], list[Unplaced], int, float] | None = None
    for spread in rules:
        state = ClusterState(nodes, services)
        next_replica = [0] * len(services)
        items: list[Item] = []
        if result.formulation == "nodes":
            placements, moved = _fit_nodes(state, result.counts, next_replica)
        else:
            every = objective == "imbalance"  # spread over all of a type's nodes
            placements, moved, items = _fit_types(state, result, spread, next_replica, every)
        for s, service in enumerate(services):
            items.extend((s, r, None) for r in range(next_replica[s], service.replicas))
        extra, unplaced, _ = place_replicas(state, items, REPAIR_RULE[objective])
        placements.extend(extra)
        value = objective_value(objective, nodes, services, placements)
        if best is None or better((len(unplaced), value), (len(best[1]), best[3])):
            best = (placements, unplaced, moved, value)
        if moved == 0:  # the model's plan fitted as it was
            break
    assert best is not None
    placements, unplaced, moved, _ = best
    return placements, unplaced, moved


def _fit_order(services: Sequence[ServiceRequirement], s: int) -> tuple[int, int, int]:
    """Order of a node's replicas when fitted at once: accelerator shares largest first
    (each to the tightest device), then by largest per-core demand."""
    demand = services[s].accelerator
    return (-(demand.share if demand else 0), -max(services[s].cores, default=0), s)


def unfitted(
    nodes: Sequence[Node],
    services: Sequence[ServiceRequirement],
    counts: dict[tuple[int, int], int],
) -> list[tuple[int, dict[int, int]]]:
    """Nodes whose planned load (replicas per service) the per-core packing cannot fit."""
    loads: dict[int, dict[int, int]] = defaultdict(dict)
    for (s, n), count in counts.items():
        loads[n][s] = count
    unfit = []
    for n, load in sorted(loads.items()):
        replicas = sorted(
            (s for s, c in load.items() for _ in range(c)), key=lambda s: _fit_order(services, s)
        )
        if assign_cores(nodes[n].cores, [services[s].cores for s in replicas]) is None:
            unfit.append((n, load))
    return unfit


def _fit_types(
    state: ClusterState,
    result: SolveResult,
    rule: Rule,
    next_replica: list[int],
    every: bool = False,
) -> tuple[list[Placement], int, list[Item]]:
    """Counts per node type onto the nodes of the type the model put in use: largest
    services first, each replica to the node ``rule`` picks among them (``worst``: the
    least loaded, so that every node gets about the mix the pooled model planned). What
    does not fit there is returned as items for any node of the type, with their number.
    ``every``: use all of a type's nodes, whatever the model put in use."""
    size = len(state.nodes)
    items: list[Item] = []
    later: list[Item] = []
    for b, members in enumerate(result.bins):
        k = len(members) if every else min(max(result.in_use.get(b, 0), 1), len(members))
        planned = np.zeros(size, dtype=bool)
        planned[members[:k]] = True
        whole = np.zeros(size, dtype=bool)
        whole[members] = True
        for s in service_order(state, "decreasing"):
            for _ in range(result.counts.get((s, b), 0)):
                items.append((s, next_replica[s], planned))
                later.append((s, next_replica[s], whole))
                next_replica[s] += 1
    placements, missed, _ = place_replicas(state, items, rule, fallback=False)
    left = {(u.service, u.replica) for u in missed}
    names = [s.name for s in state.services]
    again = [item for item in later if (names[item[0]], item[1]) in left]
    return placements, len(again), again


def _fit_nodes(
    state: ClusterState, counts: dict[tuple[int, int], int], next_replica: list[int]
) -> tuple[list[Placement], int]:
    """Per-node counts onto each node, cores assigned for the node's replicas all at once;
    replicas that do not fit are left for the caller (counted in the second value)."""
    services = state.services
    placements: list[Placement] = []
    dropped = 0
    by_node: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for (s, n), count in counts.items():
        by_node[n].append((s, count))
    for n in sorted(by_node):
        keep = sorted(
            (s for s, count in by_node[n] for _ in range(count)),
            key=lambda s: _fit_order(services, s),
        )
        fitted = assign_cores(state.nodes[n].cores, [services[s].cores for s in keep])
        while fitted is None:  # the relaxation let too much on: drop the smallest
            keep.pop()
            dropped += 1
            fitted = assign_cores(state.nodes[n].cores, [services[s].cores for s in keep])
        for s, cores in zip(keep, fitted, strict=True):
            if state.why_not(s, n, cores=False) is not None:
                dropped += 1
                continue
            taken, device = state.commit(s, n, cores)
            placements.append(
                Placement(
                    service=services[s].name,
                    replica=next_replica[s],
                    node=state.names[n],
                    cores=taken,
                    accelerator=device,
                )
            )
            next_replica[s] += 1
    return placements, dropped
