"""First, best and worst fit: sound plans on ROHE's examples and generated clusters, the
classical choices, reasons for what cannot be placed, explanations."""

from __future__ import annotations

import pytest
from placement_cases import node, rohe_json, rohe_yaml, service

from harmonia.orchestration import (
    BestFitPlacer,
    FirstFitPlacer,
    Node,
    Placer,
    WorstFitPlacer,
    plan_violations,
)
from harmonia.orchestration.generate import generate_cluster

HEURISTICS = [FirstFitPlacer, BestFitPlacer, WorstFitPlacer]


@pytest.mark.parametrize("placer", HEURISTICS, ids=lambda p: p.name)
@pytest.mark.parametrize("inventory", [rohe_json, rohe_yaml], ids=["json", "yaml"])
def test_rohe_examples_are_placed_whole_and_soundly(placer: type[Placer], inventory) -> None:  # type: ignore[no-untyped-def]
    nodes, services = inventory()
    plan = placer().place(nodes, services)
    assert plan_violations(nodes, services, plan) == []
    assert not plan.unplaced
    assert len(plan.placements) == sum(s.replicas for s in services)


@pytest.mark.parametrize("placer", HEURISTICS, ids=lambda p: p.name)
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("size", [(10, 50), (40, 300)])
def test_generated_clusters_are_placed_soundly(
    placer: type[Placer], seed: int, size: tuple[int, int]
) -> None:
    nodes, services = generate_cluster(*size, seed=seed)
    plan = placer().place(nodes, services)
    assert plan_violations(nodes, services, plan) == []


def _small_and_big() -> list[Node]:
    return [node("big", cores=8, memory=16384), node("small", cores=2, memory=2048)]


def test_best_fit_takes_the_node_left_with_least_free_and_worst_fit_the_most() -> None:
    """ROHE swapped these two; here the classical meanings hold."""
    services = [service("api", cpu=500, memory_mib=256)]
    assert BestFitPlacer().place(_small_and_big(), services).placements[0].node == "small"
    assert WorstFitPlacer().place(_small_and_big(), services).placements[0].node == "big"
    assert FirstFitPlacer().place(_small_and_big(), services).placements[0].node == "big"


def test_best_fit_packs_and_worst_fit_spreads() -> None:
    nodes = [node(f"n{i}", cores=4) for i in range(4)]
    services = [service("web", cpu=1000, replicas=4)]
    packed = BestFitPlacer().place(nodes, services)
    spread = WorstFitPlacer().place(nodes, services)
    assert packed.objective.value == 1
    assert len(spread.nodes_used) == 4


def test_first_fit_follows_inventory_order_and_order_given_keeps_the_list() -> None:
    nodes = [node("a", cores=2), node("b", cores=8)]
    services = [service("small", cpu=500), service("large", cpu=2000)]
    given = FirstFitPlacer(order="given").place(nodes, services)
    assert [(p.service, p.node) for p in given.placements] == [("small", "a"), ("large", "b")]
    decreasing = FirstFitPlacer().place(nodes, services)
    assert [(p.service, p.node) for p in decreasing.placements] == [
        ("large", "a"),
        ("small", "b"),
    ]


def test_no_accelerator_asked_means_any_node_and_gpus_are_not_double_counted() -> None:
    """ROHE rejected every node when no accelerator was asked for."""
    nodes = [node("cpu-only"), node("jetson", accelerators=[{"name": "gpu0", "type": "gpu"}])]
    services = [
        service("plain", cpu=100),
        service("infer", cpu=100, accelerator={"type": "gpu", "share": 60}, replicas=2),
    ]
    plan = FirstFitPlacer(order="given").place(nodes, services)
    assert plan.placements[0].node == "cpu-only"
    assert [p.node for p in plan.placements if p.service == "infer"] == ["jetson"]
    assert [u.kind for u in plan.unplaced] == ["accelerator"]
    assert "needs 60 of one gpu, most free on a device is 40" in plan.unplaced[0].reason


@pytest.mark.parametrize("placer", HEURISTICS, ids=lambda p: p.name)
def test_unplaceable_replicas_are_reported_with_the_reason(placer: type[Placer]) -> None:
    nodes = [node("a", cores=2, memory=1024), node("b", cores=2, memory=1024)]
    services = [
        service("wide", cpu=3000),
        service("fat", cpu=100, memory_mib=4096),
        service("pinned", cpu=100, node_selector={"site": "moon"}),
        service("lonely", cpu=100, replicas=3, anti_affinity=["lonely"]),
        service("tpu", cpu=100, accelerator={"type": "tpu", "share": 10}),
        service("fine", cpu=100),
    ]
    plan = placer().place(nodes, services)
    kinds = {(u.service, u.kind) for u in plan.unplaced}
    assert kinds == {
        ("wide", "cpu"),
        ("fat", "memory"),
        ("pinned", "selector"),
        ("lonely", "anti_affinity"),
        ("tpu", "accelerator"),
    }
    assert all(u.reason.startswith("no node can take it") for u in plan.unplaced)
    assert plan_violations(nodes, services, plan) == []


def test_contention_sensitive_services_never_share_a_node() -> None:
    nodes = [node("a", cores=8), node("b", cores=8)]
    services = [
        service("db", cpu=500, sensitivity="memory"),
        service("cache", cpu=500, sensitivity="memory"),
        service("batch", cpu=500, sensitivity="cpu", replicas=2),
    ]
    plan = BestFitPlacer().place(nodes, services)
    assert plan_violations(nodes, services, plan) == []
    where = {p.service: p.node for p in plan.placements}
    assert where["db"] != where["cache"]
    assert len({p.node for p in plan.placements if p.service == "batch"}) == 2


def test_per_core_fit_decides_where_total_cpu_would_not() -> None:
    """Three full cores are free in total, but on no single core is there room for 900."""
    nodes = [node("a", cores=4), node("b", cores=4)]
    services = [
        service("slivers", cores=[600, 600, 600, 600]),
        service("heavy", cores=[900]),
    ]
    plan = FirstFitPlacer(order="given").place(nodes, services)
    assert [p.node for p in plan.placements] == ["a", "b"]
    heavy = next(e for e in plan.explanations if e.service == "heavy")
    assert heavy.rejected == {"cores": 1}
    assert "do not fit free cores" in heavy.examples[0].detail


def test_explanations_say_why_and_stay_bounded() -> None:
    nodes, services = generate_cluster(200, 1000, seed=2)
    plan = BestFitPlacer().place(nodes, services)
    for explanation in plan.explanations:
        assert explanation.why.startswith("best fit")
        assert len(explanation.nodes) <= 5
        assert len(explanation.examples) <= 3 * 8
        if explanation.placed > 1:
            assert explanation.rejected, explanation
    busy = max(plan.explanations, key=lambda e: e.placed)
    assert busy.more_nodes + len(busy.nodes) == len(
        {p.node for p in plan.placements if p.service == busy.service}
    )


def test_energy_and_imbalance_are_measured_for_heuristics() -> None:
    nodes = [node("a", cores=4), node("b", cores=4)]
    services = [service("web", cpu=1000, memory_mib=1024, replicas=2)]
    energy = WorstFitPlacer(objective="energy").place(nodes, services)
    # each node: 8 W idle + 25 % of (20 - 8) W
    assert energy.objective.value == pytest.approx(2 * (8 + 0.25 * 12))
    assert energy.objective.unit == "W"
    imbalance = BestFitPlacer(objective="imbalance").place(nodes, services)
    assert imbalance.objective.value == pytest.approx(0.5)
