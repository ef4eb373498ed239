"""The greedy placement pass shared by first-, best- and worst-fit, and by the optimal
placer's repair step: replicas one by one, each to a node chosen by a rule among the nodes
that can take it now."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Literal

import numpy as np

from harmonia.orchestration._cluster import ClusterState
from harmonia.orchestration._explain import ExplanationLog, unplaced_reason
from harmonia.orchestration._plan import Placement, RejectionKind, Unplaced, UnplacedKind
from harmonia.orchestration._services import ServiceRequirement

#: first fit: the first node in inventory order; best fit: the one left with the least free
#: capacity; worst fit: the one left with the most
Rule = Literal["first", "best", "worst"]
#: ``decreasing``: scarce and big services first (accelerators, then spread or sensitive
#: ones, then by size); ``given``: as listed
Order = Literal["decreasing", "given"]
ORDERS: tuple[Order, ...] = ("decreasing", "given")

WHY: dict[Rule, str] = {
    "first": "first fit: the first node, in inventory order, that can take the replica",
    "best": "best fit: of the nodes that can take the replica, the one left with the least "
    "free capacity (CPU plus memory, in units of the largest node's)",
    "worst": "worst fit: of the nodes that can take the replica, the one left with the most "
    "free capacity (CPU plus memory, in units of the largest node's)",
}


def service_order(state: ClusterState, order: Order) -> list[int]:
    """Indices of the services in the order their replicas are placed."""
    indices = list(range(len(state.services)))
    if order == "given":
        return indices

    def key(s: int) -> tuple[bool, bool, float]:
        service: ServiceRequirement = state.services[s]
        size = service.cpu_millicores / state.cpu_ref + service.memory_mib / state.mem_ref
        constrained = bool(service.sensitivity) or bool(state.avoid[s])
        return (service.accelerator is None, not constrained, -size)

    return sorted(indices, key=key)


def _ranked(state: ClusterState, s: int, candidates: np.ndarray, rule: Rule) -> np.ndarray:
    if rule == "first" or len(candidates) < 2:
        return candidates
    score = state.residual(s)[candidates]
    if rule == "worst":
        score = -score
    return candidates[np.argsort(score, kind="stable")]


def _loser_detail(state: ClusterState, s: int, chosen: int, rule: Rule) -> Callable[[int], str]:
    if rule == "first":
        return lambda n: f"fits, but comes after {state.names[chosen]} in inventory order"
    residual = state.residual(s)
    word = "more" if rule == "best" else "less"
    return lambda n: (
        f"fits, but would keep {residual[n]:.3f} free, {word} than "
        f"{state.names[chosen]}'s {residual[chosen]:.3f}"
    )


#: a replica to place: service index, replica index, and the nodes it should go to (a mask;
#: None for any node)
Item = tuple[int, int, "np.ndarray | None"]


def place_replicas(
    state: ClusterState,
    items: Iterable[Item],
    rule: Rule,
    log: ExplanationLog | None = None,
    *,
    fallback: bool = True,
) -> tuple[list[Placement], list[Unplaced], int]:
    """Place each item in turn, committing to ``state``; what no node takes is returned as
    unplaced, with its reason. An item whose nodes cannot take it goes to any node that
    can (unless ``fallback`` is false); the third value counts those."""
    placements: list[Placement] = []
    unplaced: list[Unplaced] = []
    outside = 0
    # a service that found no node finds none later either (the checks are monotone)
    failed: dict[tuple[int, int], tuple[str, UnplacedKind]] = {}
    for s, replica, allowed in items:
        name = state.services[s].name
        chosen: int | None = None
        tries = (allowed, None) if allowed is not None and fallback else (allowed,)
        for where in tries:
            key = (s, id(where))
            if key in failed:
                continue
            chosen = _choose(state, s, where, rule, log, failed, key)
            if chosen is not None:
                outside += where is not allowed
                break
        if chosen is None:
            reason, kind = failed[(s, id(tries[-1]))]
            unplaced.append(Unplaced(service=name, replica=replica, reason=reason, kind=kind))
            if log is not None:
                log.left_out(s)
            continue
        cores, device = state.commit(s, chosen)
        placements.append(
            Placement(
                service=name,
                replica=replica,
                node=state.names[chosen],
                cores=cores,
                accelerator=device,
            )
        )
    return placements, unplaced, outside


def _choose(
    state: ClusterState,
    s: int,
    where: np.ndarray | None,
    rule: Rule,
    log: ExplanationLog | None,
    failed: dict[tuple[int, int], tuple[str, UnplacedKind]],
    key: tuple[int, int],
) -> int | None:
    """The node ``rule`` picks for a replica of ``s`` among ``where`` (all nodes if None),
    its decision logged (only for all nodes); None, with the reason kept in ``failed``."""
    ok, rejected = state.assess(s)
    if where is not None:
        ok = ok & where
    ranked = _ranked(state, s, np.flatnonzero(ok), rule)
    chosen: int | None = None
    tried = 0
    for n in ranked:
        tried += 1
        if state.cores_fit(s, int(n)):
            chosen = int(n)
            break
    cores_failed = ranked[: tried - 1] if chosen is not None else ranked
    if len(cores_failed):
        mask = np.zeros(len(state.nodes), dtype=bool)
        mask[cores_failed] = True
        rejected = [*rejected, ("cores", mask)]
    merged = _merged(rejected)
    if chosen is None:
        failed[key] = unplaced_reason(state, s, merged)
    if log is not None and where is None:
        for kind, mask in merged:
            log.reject(s, kind, mask)
        if chosen is not None and rule != "first":  # first fit never looks past its node
            log.not_chosen(s, ranked[tried:], _loser_detail(state, s, chosen, rule))
        if chosen is not None:
            log.placed(s, chosen)
    return chosen


def _merged(
    rejected: Sequence[tuple[RejectionKind, np.ndarray]],
) -> list[tuple[RejectionKind, np.ndarray]]:
    """One mask per kind (the per-core failures may add a second ``cores`` mask)."""
    merged: dict[RejectionKind, np.ndarray] = {}
    for kind, mask in rejected:
        merged[kind] = merged[kind] | mask if kind in merged else mask
    return list(merged.items())


def all_replicas(state: ClusterState, order: Order) -> list[Item]:
    """Every replica, for any node, services in ``order``, replicas consecutive."""
    return [
        (s, replica, None)
        for s in service_order(state, order)
        for replica in range(state.services[s].replicas)
    ]
