"""Infrastructure tactics: ``scale`` a service (replicas up or down) and ``migrate`` a replica
off a node, replanned incrementally — every replica not concerned stays where it runs.

A tactic starts from the plan in force: its placements are committed to a fresh
`ClusterState` first, so the new replicas see exactly the capacity that is left, and only the
replicas the tactic concerns are placed (by best fit by default). The result says what
moves, so an executor (the Kubernetes client, an operator's effector) carries out only that.

`choose_tactic` is the decision the contract keeper asks for when a latency SLO breaks: if the
node of the blamed replica is saturated and another node can take the replica, migrate it;
otherwise add a replica; otherwise nothing, with the reason.

>>> from harmonia.orchestration import BestFitPlacer, Node, ServiceRequirement
>>> nodes = [Node(name="a", cores=2, memory_mib=2048), Node(name="b", cores=2, memory_mib=2048)]
>>> services = [ServiceRequirement(name="api", cpu_millicores=800)]
>>> plan = BestFitPlacer().place(nodes, services)
>>> moved = migrate(nodes, services, plan, "api", away_from="a")
>>> [(m.source, m.target) for m in moved.moves]
[('a', 'b')]
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from harmonia.core.errors import Issue
from harmonia.orchestration._assemble import make_plan
from harmonia.orchestration._cluster import ClusterState
from harmonia.orchestration._errors import InventoryError
from harmonia.orchestration._greedy import Rule, place_replicas
from harmonia.orchestration._nodes import Node
from harmonia.orchestration._plan import Objective, Placement, Plan, Unplaced
from harmonia.orchestration._services import ServiceRequirement

TacticKind = Literal["scale", "migrate"]
#: CPU utilisation (reported, or allocated by the plan) from which a node counts as saturated
SATURATION = 0.9


class Move(BaseModel):
    """One replica's change: ``source`` None for a new replica, ``target`` None for one
    removed, both for a replica that moves."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    service: str
    replica: int = Field(ge=0)
    source: str | None
    target: str | None


class Replan(BaseModel):
    """A tactic's outcome: the plan after it, what moves, and why (``moves`` empty and
    ``reason`` saying why when nothing can be done)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: TacticKind
    service: str
    plan: Plan
    moves: list[Move]
    reason: str

    @property
    def done(self) -> bool:
        return bool(self.moves)


def scale(
    nodes: Sequence[Node],
    services: Sequence[ServiceRequirement],
    current: Plan,
    service: str,
    replicas: int,
    *,
    rule: Rule = "best",
    objective: Objective = "nodes",
) -> Replan:
    """``service`` with ``replicas`` replicas: new ones placed around what runs, surplus
    ones taken from the nodes that hold the most of them (highest replica first)."""
    s, _ = _service(services, service)
    if replicas < 0:
        raise InventoryError([Issue("replicas", f"{replicas} is below 0")])
    mine = sorted((p for p in current.placements if p.service == service), key=_replica)
    if replicas < len(mine):
        dropped = _surplus(mine, len(mine) - replicas)
        kept = [p for p in current.placements if p not in dropped]
        moves = [
            Move(service=service, replica=p.replica, source=p.node, target=None) for p in dropped
        ]
        plan = _replanned(current, nodes, services, kept, [], objective, 0.0, service, replicas)
        return Replan(
            kind="scale",
            service=service,
            plan=plan,
            moves=moves,
            reason=f"{service} down from {len(mine)} to {replicas} replicas",
        )
    start = time.perf_counter()
    state = _loaded(nodes, services, current.placements)
    used = {p.replica for p in mine}
    new = [r for r in range(replicas + len(mine)) if r not in used][: replicas - len(mine)]
    placed, unplaced, _ = place_replicas(state, [(s, r, None) for r in new], rule)
    moves = [Move(service=service, replica=p.replica, source=None, target=p.node) for p in placed]
    plan = _replanned(
        current,
        nodes,
        services,
        [*current.placements, *placed],
        unplaced,
        objective,
        time.perf_counter() - start,
        service,
        replicas,
    )
    if not new:
        reason = f"{service} already runs {len(mine)} replicas"
    elif unplaced:
        reason = f"{len(unplaced)} of {len(new)} new replicas of {service} fit nowhere: "
        reason += unplaced[0].reason
    else:
        reason = f"{service} up from {len(mine)} to {replicas} replicas, on " + ", ".join(
            sorted({p.node for p in placed})
        )
    return Replan(kind="scale", service=service, plan=plan, moves=moves, reason=reason)


def migrate(
    nodes: Sequence[Node],
    services: Sequence[ServiceRequirement],
    current: Plan,
    service: str,
    *,
    away_from: str,
    replicas: int | None = 1,
    rule: Rule = "best",
    objective: Objective = "nodes",
) -> Replan:
    """Move ``replicas`` replicas of ``service`` (all, for None) off node ``away_from`` to
    other nodes; a replica no other node takes stays where it is."""
    s, _ = _service(services, service)
    leaving = sorted(
        (p for p in current.placements if p.service == service and p.node == away_from),
        key=_replica,
        reverse=True,
    )[: replicas if replicas is not None else None]
    if not leaving:
        return Replan(
            kind="migrate",
            service=service,
            plan=current,
            moves=[],
            reason=f"{service} runs no replica on {away_from}",
        )
    start = time.perf_counter()
    staying = [p for p in current.placements if p not in leaving]
    state = _loaded(nodes, services, staying)
    elsewhere = np.array([name != away_from for name in state.names], dtype=bool)
    placed, unplaced, _ = place_replicas(
        state, [(s, p.replica, elsewhere) for p in leaving], rule, fallback=False
    )
    stuck = {u.replica for u in unplaced}
    kept = [p for p in leaving if p.replica in stuck]  # back where it was
    plan = _replanned(
        current,
        nodes,
        services,
        [*staying, *placed, *kept],
        [],
        objective,
        time.perf_counter() - start,
        service,
        None,
    )
    moves = [
        Move(service=service, replica=p.replica, source=away_from, target=p.node) for p in placed
    ]
    if moves:
        reason = f"{len(moves)} replica(s) of {service} from {away_from} to " + ", ".join(
            sorted({p.node for p in placed})
        )
    else:
        reason = f"no other node takes {service}: {unplaced[0].reason}"
    return Replan(kind="migrate", service=service, plan=plan, moves=moves, reason=reason)


def utilisation(
    nodes: Sequence[Node],
    services: Sequence[ServiceRequirement],
    plan: Plan,
    reported: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """Each node's CPU utilisation in [0, 1]: as the node reports it where it does, else
    what the plan allocates on it over its capacity."""
    demand = {s.name: s.cpu_millicores for s in services}
    allocated = dict.fromkeys((n.name for n in nodes), 0)
    for p in plan.placements:
        allocated[p.node] = allocated.get(p.node, 0) + demand.get(p.service, 0)
    found = {
        n.name: allocated[n.name] / n.cpu_millicores if n.cpu_millicores else 1.0 for n in nodes
    }
    for name, value in (reported or {}).items():
        if name in found:
            found[name] = min(max(float(value), 0.0), 1.0)
    return found


def choose_tactic(
    nodes: Sequence[Node],
    services: Sequence[ServiceRequirement],
    current: Plan,
    service: str,
    node: str | None,
    *,
    reported: Mapping[str, float] | None = None,
    saturation: float = SATURATION,
    max_replicas: int | None = None,
) -> Replan:
    """What to do about ``service`` breaking its SLO with its worst replica on ``node``:
    migrate off a saturated node, else scale out by one (up to ``max_replicas``)."""
    load = utilisation(nodes, services, current, reported)
    notes = []
    if node is not None and load.get(node, 0.0) >= saturation:
        moved = migrate(nodes, services, current, service, away_from=node)
        if moved.done:
            return moved.model_copy(
                update={"reason": f"node {node} is saturated ({load[node]:.0%}): {moved.reason}"}
            )
        notes.append(moved.reason)
    elif node is not None:
        notes.append(f"node {node} is not saturated ({load.get(node, 0.0):.0%})")
    count = sum(1 for p in current.placements if p.service == service)
    if max_replicas is not None and count >= max_replicas:
        reason = "; ".join([*notes, f"{service} is at its {max_replicas} replicas already"])
        return Replan(kind="scale", service=service, plan=current, moves=[], reason=reason)
    scaled = scale(nodes, services, current, service, count + 1)
    return scaled.model_copy(update={"reason": "; ".join([*notes, scaled.reason])})


# -- helpers ---------------------------------------------------------------------------------


def _replica(placement: Placement) -> int:
    return placement.replica


def _service(services: Sequence[ServiceRequirement], name: str) -> tuple[int, ServiceRequirement]:
    for s, requirement in enumerate(services):
        if requirement.name == name:
            return s, requirement
    raise InventoryError([Issue("service", f"no service named {name!r} in the requirements")])


def _loaded(
    nodes: Sequence[Node], services: Sequence[ServiceRequirement], placements: Sequence[Placement]
) -> ClusterState:
    """A cluster state with ``placements`` committed (on the cores and devices they hold)."""
    state = ClusterState(nodes, services)
    node_index = {name: n for n, name in enumerate(state.names)}
    service_index = {s.name: i for i, s in enumerate(services)}
    for p in placements:
        n, s = node_index.get(p.node), service_index.get(p.service)
        if n is None or s is None:
            raise InventoryError(
                [
                    Issue(
                        "placements",
                        f"{p.service} replica {p.replica} on {p.node} names a node or "
                        "service the inventory lacks",
                    )
                ]
            )
        state.commit(s, n, list(p.cores) if p.cores else None)
    return state


def _surplus(mine: list[Placement], count: int) -> list[Placement]:
    """The ``count`` replicas to remove: from the nodes that hold the most, highest first."""
    per_node: dict[str, int] = {}
    for p in mine:
        per_node[p.node] = per_node.get(p.node, 0) + 1
    ranked = sorted(mine, key=lambda p: (-per_node[p.node], -p.replica))
    return ranked[:count]


def _replanned(
    current: Plan,
    nodes: Sequence[Node],
    services: Sequence[ServiceRequirement],
    placements: list[Placement],
    unplaced: list[Unplaced],
    objective: Objective,
    seconds: float,
    service: str,
    replicas: int | None,
) -> Plan:
    """The plan after a tactic: the services' replica counts follow the change."""
    if replicas is not None:
        services = [
            s.model_copy(update={"replicas": replicas}) if s.name == service else s
            for s in services
        ]
    # a scaled service's replicas are decided anew; others' unplaced replicas stay so
    others = [u for u in current.unplaced if replicas is None or u.service != service]
    return make_plan(
        placer=current.placer,
        status="heuristic",
        objective=objective,
        nodes=nodes,
        services=services,
        placements=sorted(placements, key=lambda p: (p.service, p.replica)),
        unplaced=[*others, *unplaced],
        explanations=current.explanations,
        seconds=seconds,
        notes=[*current.notes, "replanned incrementally"],
    )
