"""The conformance checks of a placer (entry-point group ``harmonia.placers``).

Every plan is judged by `harmonia.orchestration.plan_violations`, a check written apart from
the placers: each replica exactly once, capacities (CPU, memory, per-core, accelerator
devices), anti-affinity, contention sensitivity and node selectors.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from harmonia.core.strategies.base import get_params
from harmonia.orchestration import (
    OBJECTIVES,
    InventoryError,
    Node,
    Placer,
    Plan,
    ServiceRequirement,
    objective_value,
    plan_violations,
)
from harmonia.orchestration._explain import MAX_EXAMPLES, MAX_NODES
from harmonia.orchestration.generate import generate_cluster
from harmonia.plugins import PLACERS, load_plugin
from harmonia.testing._check import Check, check_registered, plugin_label, raises, run_all

PlacerFactory = Callable[..., Placer]
#: generated clusters the soundness checks place onto: (nodes, replicas, seed)
CLUSTERS = ((8, 40, 0), (12, 60, 1), (6, 80, 2))


def _node(name: str, cores: int = 4, memory: int = 4096, **fields: Any) -> Node:
    power = {"idle_w": 2.0 * cores, "peak_w": 5.0 * cores}
    return Node.model_validate(
        {"name": name, "cores": cores, "memory_mib": memory, "power": power, **fields}
    )


def _sound(nodes: Sequence[Node], services: Sequence[ServiceRequirement], plan: Plan) -> None:
    problems = plan_violations(nodes, services, plan)
    assert not problems, f"unsound plan: {problems[:5]}"


def _place(
    factory: PlacerFactory, params: dict[str, Any], nodes: Any, services: Any, **more: Any
) -> Plan:
    plan = factory(**{**params, **more}).place(nodes, services)
    assert isinstance(plan, Plan), f"place() returned {type(plan).__name__}, not a Plan"
    return plan


# -- the checks --------------------------------------------------------------------------------
def _registered_under_its_own_name(
    factory: PlacerFactory, params: dict[str, Any], name: str | None
) -> None:
    check_registered(PLACERS, factory, name)
    assert isinstance(factory(**params), Placer), "an instance does not satisfy Placer"


def _constructor_only_stores_parameters(
    factory: PlacerFactory, params: dict[str, Any], name: str | None
) -> None:
    signature = inspect.signature(factory)
    assert "objective" in signature.parameters, "the constructor takes no 'objective'"
    placer = factory()
    defaults = {p.name: p.default for p in signature.parameters.values()}
    stored = get_params(placer)
    assert stored == defaults, f"parameters stored {stored} differ from the defaults {defaults}"
    learned = [a for a in vars(placer) if a.endswith("_")]
    assert not learned, f"learned state {learned} before any placement"


def _plans_are_sound_on_generated_clusters(
    factory: PlacerFactory, params: dict[str, Any], name: str | None
) -> None:
    for count, replicas, seed in CLUSTERS:
        nodes, services = generate_cluster(count, replicas, seed=seed)
        plan = _place(factory, params, nodes, services)
        _sound(nodes, services, plan)
        assert plan.placer == factory.name, f"plan says placer {plan.placer!r}"  # type: ignore[attr-defined]


def _every_objective_is_reported_as_measured(
    factory: PlacerFactory, params: dict[str, Any], name: str | None
) -> None:
    nodes, services = generate_cluster(8, 30, seed=3)
    for objective in OBJECTIVES:
        plan = _place(factory, params, nodes, services, objective=objective)
        _sound(nodes, services, plan)
        assert plan.objective.name == objective, f"asked {objective}, got {plan.objective.name}"
        measured = objective_value(objective, nodes, services, plan.placements)
        assert abs(plan.objective.value - measured) <= 1e-6 * max(1.0, measured), (
            f"{objective}: plan says {plan.objective.value}, its placements measure {measured}"
        )
        bound = plan.objective.bound
        if bound is not None:
            assert bound <= plan.objective.value + 1e-6, f"bound {bound} above the value"


def _constraints_hold_where_they_bind(
    factory: PlacerFactory, params: dict[str, Any], name: str | None
) -> None:
    nodes = [
        _node("a", labels={"site": "lab"}),
        _node("b", labels={"site": "lab"}),
        _node("c", labels={"site": "field"}),
        _node("gpu", accelerators=[{"name": "gpu0", "type": "gpu"}]),
    ]
    services = [
        ServiceRequirement(name="spread", cpu_millicores=200, replicas=4, anti_affinity=["spread"]),
        ServiceRequirement(name="noisy", cpu_millicores=300, replicas=2, sensitivity="cpu"),
        ServiceRequirement(name="fussy", cpu_millicores=300, sensitivity=["cpu", "memory"]),
        ServiceRequirement(
            name="lab-only", cores=[1000, 500], node_selector={"site": "lab"}, replicas=2
        ),
        ServiceRequirement(name="apart", cpu_millicores=100, anti_affinity=["lab-only"]),
        ServiceRequirement(
            name="infer", cores=[500], accelerator={"type": "gpu", "share": 40}, replicas=2
        ),
    ]
    plan = _place(factory, params, nodes, services)
    _sound(nodes, services, plan)
    assert not plan.unplaced, f"left out what fits: {[u.reason for u in plan.unplaced]}"


def _what_cannot_be_placed_is_reported_with_a_reason(
    factory: PlacerFactory, params: dict[str, Any], name: str | None
) -> None:
    nodes = [_node("small", cores=2, memory=2048), _node("big", cores=8, memory=8192)]
    services = [
        ServiceRequirement(name="web", cpu_millicores=500, replicas=2),
        ServiceRequirement(
            name="tpu-job", cpu_millicores=100, accelerator={"type": "tpu", "share": 10}
        ),
        ServiceRequirement(name="huge", cpu_millicores=100, memory_mib=65536, replicas=2),
    ]
    plan = _place(factory, params, nodes, services)
    _sound(nodes, services, plan)
    left = {(u.service, u.kind) for u in plan.unplaced}
    assert left == {("tpu-job", "accelerator"), ("huge", "memory")}, f"unplaced: {left}"
    assert all(u.reason for u in plan.unplaced), "an unplaced replica without a reason"
    assert len(plan.placements) == 2, "the web replicas were not both placed"


def _explanations_cover_every_service_and_stay_small(
    factory: PlacerFactory, params: dict[str, Any], name: str | None
) -> None:
    nodes, services = generate_cluster(40, 120, seed=4)
    plan = _place(factory, params, nodes, services)
    explained = [e.service for e in plan.explanations]
    assert explained == [s.name for s in services], f"explanations for {explained}"
    for explanation, service in zip(plan.explanations, services, strict=True):
        placed = sum(1 for p in plan.placements if p.service == service.name)
        assert explanation.placed == placed, f"{service.name}: explains {explanation.placed}"
        assert explanation.placed + explanation.unplaced == service.replicas
        assert explanation.why, f"{service.name}: no reason given"
        assert len(explanation.nodes) <= MAX_NODES, f"{service.name}: too many nodes listed"
        kinds = [e.kind for e in explanation.examples]
        assert all(kinds.count(k) <= MAX_EXAMPLES for k in kinds), "too many examples"
        assert all(e.kind in explanation.rejected for e in explanation.examples)


def _empty_inventories(factory: PlacerFactory, params: dict[str, Any], name: str | None) -> None:
    nodes = [_node("a")]
    services = [ServiceRequirement(name="web", cpu_millicores=100, replicas=3)]
    empty = _place(factory, params, nodes, [])
    assert not empty.placements and not empty.unplaced, "placed something with no services"
    nowhere = _place(factory, params, [], services)
    assert not nowhere.placements, "placed a replica with no nodes"
    assert [u.kind for u in nowhere.unplaced] == ["no_nodes"] * 3, "no nodes, yet " + str(
        [u.kind for u in nowhere.unplaced]
    )


def _invalid_inventories_are_refused(
    factory: PlacerFactory, params: dict[str, Any], name: str | None
) -> None:
    services = [ServiceRequirement(name="web", cpu_millicores=100)]
    with raises(InventoryError, match="nodes.1.name"):
        factory(**params).place([_node("a"), _node("a")], services)
    with raises(InventoryError, match="anti_affinity"):
        factory(**params).place(
            [_node("a")], [ServiceRequirement(name="x", cpu_millicores=1, anti_affinity=["y"])]
        )
    with raises(InventoryError, match="power model"):
        bare = Node(name="bare", cores=[1000], memory_mib=1024)
        factory(**{**params, "objective": "energy"}).place([bare], services)


def _plans_round_trip_through_json(
    factory: PlacerFactory, params: dict[str, Any], name: str | None
) -> None:
    nodes, services = generate_cluster(6, 20, seed=5)
    plan = _place(factory, params, nodes, services)
    again = Plan.model_validate_json(plan.model_dump_json())
    assert again == plan, "the plan changed through JSON"


_CHECKS = [
    _registered_under_its_own_name,
    _constructor_only_stores_parameters,
    _plans_are_sound_on_generated_clusters,
    _every_objective_is_reported_as_measured,
    _constraints_hold_where_they_bind,
    _what_cannot_be_placed_is_reported_with_a_reason,
    _explanations_cover_every_service_and_stay_small,
    _empty_inventories,
    _invalid_inventories_are_refused,
    _plans_round_trip_through_json,
]


def placer_checks(placer: str | PlacerFactory, params: dict[str, Any] | None = None) -> list[Check]:
    """Every conformance check of one placer, each a `Check` to call.

    ``placer``: a name registered under ``harmonia.placers``, or the placer's class;
    ``params``: constructor parameters every check uses (a short ``time_limit_s`` for a
    solver, say); ``objective`` is set by the checks that need another.
    """
    looked_up = placer if isinstance(placer, str) else None
    factory: PlacerFactory = load_plugin(PLACERS, placer) if isinstance(placer, str) else placer
    label = plugin_label(placer)
    given = dict(params or {})
    return [
        Check(label, check.__name__.lstrip("_"), partial(check, factory, given, looked_up))
        for check in _CHECKS
    ]


def check_placer(placer: str | PlacerFactory, params: dict[str, Any] | None = None) -> None:
    """Run every conformance check on one placer; the first failure raises an
    `AssertionError` naming the placer and the check. Arguments as `placer_checks`."""
    run_all(placer_checks(placer, params))
