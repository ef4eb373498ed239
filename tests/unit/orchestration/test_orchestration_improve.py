"""Consolidation empties lightly loaded nodes into the others, soundly, and only where that
pays; releasing a replica restores what committing it took."""

from __future__ import annotations

import numpy as np
from placement_cases import node, service

from harmonia.orchestration import (
    Objective,
    Placement,
    Plan,
    WorstFitPlacer,
    objective_value,
    plan_violations,
)
from harmonia.orchestration._cluster import ClusterState
from harmonia.orchestration._improve import consolidate
from harmonia.orchestration.generate import generate_cluster

LATER = 1e18  # no deadline


def test_worst_fit_s_spread_is_consolidated_onto_fewer_nodes() -> None:
    nodes = [node(f"n{i}", cores=4) for i in range(4)]
    services = [service("web", cores=[500], replicas=4), service("db", cpu=1000, memory_mib=512)]
    spread = WorstFitPlacer().place(nodes, services)
    placements, emptied = consolidate(nodes, services, list(spread.placements), "nodes", LATER)
    assert emptied >= 2
    plan = Plan(placer="x", status="heuristic", objective=spread.objective, placements=placements)
    assert plan_violations(nodes, services, plan) == []
    assert len(plan.nodes_used) == len(spread.nodes_used) - emptied


def test_energy_consolidation_empties_the_node_whose_load_costs_most() -> None:
    """Emptying the frugal node would add far more on the hungry one than its idle power."""
    frugal = node("frugal", cores=4, power={"idle_w": 1, "peak_w": 2})
    hungry = node("hungry", cores=4, power={"idle_w": 10, "peak_w": 400})
    services = [service("web", cpu=2000, replicas=2)]
    placements = [
        Placement(service="web", replica=0, node="frugal"),
        Placement(service="web", replica=1, node="hungry"),
    ]
    moved, emptied = consolidate([frugal, hungry], services, placements, "energy", LATER)
    assert emptied == 1
    assert [p.node for p in moved] == ["frugal", "frugal"]


def test_consolidation_keeps_generated_plans_sound_and_never_worse() -> None:
    nodes, services = generate_cluster(30, 150, seed=6)
    objectives: tuple[Objective, ...] = ("nodes", "energy")
    for objective in objectives:
        spread = WorstFitPlacer(objective=objective).place(nodes, services)
        placements, _ = consolidate(nodes, services, list(spread.placements), objective, LATER)
        plan = spread.model_copy(update={"placements": placements})
        assert plan_violations(nodes, services, plan) == []
        value = objective_value(objective, nodes, services, placements)
        assert value <= spread.objective.value + 1e-9


def test_a_deadline_already_past_changes_nothing() -> None:
    nodes = [node(f"n{i}") for i in range(3)]
    services = [service("web", cpu=100, replicas=3)]
    spread = WorstFitPlacer().place(nodes, services)
    placements, emptied = consolidate(nodes, services, list(spread.placements), "nodes", 0.0)
    assert emptied == 0 and len({p.node for p in placements}) == 3


def test_release_restores_what_commit_took() -> None:
    nodes = [node("g", cores=2, accelerators=[{"name": "gpu0", "type": "gpu"}])]
    services = [
        service(
            "infer",
            cores=[600, 100],
            memory_mib=300,
            sensitivity="cpu",
            accelerator={"type": "gpu", "share": 30},
        )
    ]
    state = ClusterState(nodes, services)
    snapshot = (state.cpu_free.copy(), state.mem_free.copy(), [list(c) for c in state.core_free])
    cores, device = state.commit(0, 0)
    assert state.sensitive["cpu"][0] == 0 and state.accel_free["gpu"][0][0] == 70
    state.release(0, 0, cores, device)
    assert np.array_equal(state.cpu_free, snapshot[0])
    assert np.array_equal(state.mem_free, snapshot[1])
    assert state.core_free == snapshot[2]
    assert state.sensitive["cpu"][0] == -1 and state.accel_free["gpu"][0][0] == 100
    assert state.hosted.sum() == 0
