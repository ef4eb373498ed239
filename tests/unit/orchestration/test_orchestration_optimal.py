"""The optimal placer: never worse than the heuristics on its objective, equal to brute force
on small cases, sound on both formulations, honest about its bound and gap."""

from __future__ import annotations

import itertools
import sys

import pytest
from placement_cases import node, rohe_json, service

from harmonia.orchestration import (
    OBJECTIVES,
    BestFitPlacer,
    FirstFitPlacer,
    Objective,
    OptimalPlacer,
    Placement,
    Plan,
    SolverUnavailable,
    WorstFitPlacer,
    objective_value,
    plan_violations,
)
from harmonia.orchestration.generate import generate_cluster

pytest.importorskip("ortools")
FAST = {"time_limit_s": 4.0, "workers": 2}


def _key(plan: Plan) -> tuple[int, float]:
    return len(plan.unplaced), plan.objective.value


@pytest.mark.parametrize("objective", OBJECTIVES)
@pytest.mark.parametrize("seed", range(3))
def test_never_worse_than_the_heuristics_on_its_objective(objective: Objective, seed: int) -> None:
    nodes, services = generate_cluster(12, 60, seed=seed)
    plan = OptimalPlacer(objective=objective, **FAST).place(nodes, services)  # type: ignore[arg-type]
    assert plan_violations(nodes, services, plan) == []
    for heuristic in (FirstFitPlacer, BestFitPlacer, WorstFitPlacer):
        other = heuristic(objective=objective).place(nodes, services)
        assert _key(plan) <= _key(other), f"{heuristic.name} beat optimal: {_key(other)}"
    bound = plan.objective.bound
    if bound is not None:
        assert bound <= plan.objective.value + 1e-9
        assert plan.gap is not None and 0 <= plan.gap <= 1
    else:  # only when the solver did not prove how many replicas can be placed
        assert plan.unplaced


def test_rohe_s_example_is_placed_on_the_fewest_nodes_and_proven() -> None:
    nodes, services = rohe_json()
    plan = OptimalPlacer(**FAST).place(nodes, services)  # type: ignore[arg-type]
    assert plan_violations(nodes, services, plan) == []
    assert (plan.objective.value, plan.objective.bound, plan.status) == (4, 4, "optimal")
    assert plan.gap == 0


def _brute_force(nodes, services, objective: Objective) -> float:  # type: ignore[no-untyped-def]
    replicas = [(s.name, r) for s in services for r in range(s.replicas)]
    best = float("inf")
    for where in itertools.product(range(len(nodes)), repeat=len(replicas)):
        placements = [
            Placement(service=name, replica=r, node=nodes[n].name)
            for (name, r), n in zip(replicas, where, strict=True)
        ]
        plan = Plan(
            placer="brute",
            status="heuristic",
            objective={"name": objective, "value": 0, "unit": ""},
            placements=placements,
        )
        if not plan_violations(nodes, services, plan):
            best = min(best, objective_value(objective, nodes, services, placements))
    return best


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_equal_to_brute_force_on_a_small_case(objective: Objective) -> None:
    nodes = [
        node("pi", cores=4, memory=4096),
        node("nano", cores=4, memory=4096, accelerators=[{"name": "gpu0", "type": "gpu"}]),
        node("server", cores=8, memory=16384),
    ]
    services = [
        service("proc", cores=[1000, 50, 50, 50], memory_mib=1000, replicas=2),
        service("infer", cores=[500], accelerator={"type": "gpu", "share": 30}, replicas=2),
        service("db", cpu=700, memory_mib=3000, sensitivity="memory"),
        service("web", cores=[400, 50], anti_affinity=["web"], replicas=2),
    ]
    plan = OptimalPlacer(objective=objective, **FAST).place(nodes, services)  # type: ignore[arg-type]
    assert plan_violations(nodes, services, plan) == []
    assert not plan.unplaced
    assert plan.objective.value == pytest.approx(_brute_force(nodes, services, objective))


@pytest.mark.parametrize("objective", ["nodes", "energy"])
def test_the_aggregated_formulation_is_sound_and_bounded(objective: Objective) -> None:
    nodes, services = generate_cluster(60, 300, seed=1)
    plan = OptimalPlacer(objective=objective, formulation="types", **FAST).place(  # type: ignore[arg-type]
        nodes, services
    )
    assert plan_violations(nodes, services, plan) == []
    assert "types formulation" in plan.notes[0]
    assert plan.objective.bound is not None
    assert plan.objective.bound <= plan.objective.value + 1e-9


def test_per_node_and_aggregated_bounds_agree_with_each_other() -> None:
    """Each bound is a true lower bound, so neither exceeds the other's plan."""
    nodes, services = generate_cluster(20, 80, seed=7)
    exact = OptimalPlacer(formulation="nodes", **FAST).place(nodes, services)  # type: ignore[arg-type]
    pooled = OptimalPlacer(formulation="types", **FAST).place(nodes, services)  # type: ignore[arg-type]
    assert exact.objective.bound is not None and pooled.objective.bound is not None
    assert pooled.objective.bound <= exact.objective.value
    assert exact.objective.bound <= pooled.objective.value


def test_unplaceable_replicas_are_left_out_with_their_reason() -> None:
    nodes = [node("a", cores=2), node("b", cores=2)]
    services = [
        service("web", cpu=500, replicas=3),
        service("tpu", accelerator={"type": "tpu", "share": 5}),
    ]
    plan = OptimalPlacer(**FAST).place(nodes, services)  # type: ignore[arg-type]
    assert [(u.service, u.kind) for u in plan.unplaced] == [("tpu", "accelerator")]
    assert plan.objective.value == 1 and plan.status == "optimal"


def test_parameters_are_checked_when_placing() -> None:
    nodes, services = [node("a")], [service("web")]
    for bad in ({"time_limit_s": 0}, {"workers": 0}, {"relative_gap": 1.5}, {"formulation": "x"}):
        placer = OptimalPlacer(**bad)
        with pytest.raises(ValueError, match=next(iter(bad))):
            placer.place(nodes, services)


def test_without_ortools_it_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import harmonia.orchestration

    monkeypatch.setitem(sys.modules, "ortools", None)
    monkeypatch.delattr(harmonia.orchestration, "_cpsat", raising=False)
    monkeypatch.delitem(sys.modules, "harmonia.orchestration._cpsat", raising=False)
    monkeypatch.delitem(sys.modules, "ortools.sat.python.cp_model", raising=False)
    monkeypatch.delitem(sys.modules, "ortools.sat.python", raising=False)
    monkeypatch.delitem(sys.modules, "ortools.sat", raising=False)
    with pytest.raises(SolverUnavailable, match="pip install"):
        OptimalPlacer().place([node("a")], [service("web")])
