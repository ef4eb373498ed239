"""Infrastructure tactics: scale and migrate replanned incrementally (nothing else moves),
and the choice between them when a service breaks its SLO."""

from __future__ import annotations

import pytest
from placement_cases import node, rohe_json, service

from harmonia.orchestration import BestFitPlacer, InventoryError, Plan, plan_violations
from harmonia.orchestration.tactics import choose_tactic, migrate, scale, utilisation


def where(plan: Plan) -> dict[tuple[str, int], str]:
    return {(p.service, p.replica): p.node for p in plan.placements}


def test_scaling_up_places_only_the_new_replicas_around_what_runs() -> None:
    nodes = [node(f"n{i}", cores=2) for i in range(4)]
    services = [service("api", 700, replicas=2), service("db", 1200, replicas=1)]
    before = BestFitPlacer().place(nodes, services)
    after = scale(nodes, services, before, "api", 4)
    assert after.done and len(after.moves) == 2
    assert all(m.source is None and m.target for m in after.moves)
    # nothing that ran moved
    assert where(before).items() <= where(after.plan).items()
    grown = [s.model_copy(update={"replicas": 4}) if s.name == "api" else s for s in services]
    assert plan_violations(nodes, grown, after.plan) == []
    assert sorted(p.replica for p in after.plan.placements if p.service == "api") == [0, 1, 2, 3]


def test_scaling_down_takes_replicas_from_the_most_loaded_node() -> None:
    nodes = [node("a", cores=4), node("b", cores=4)]
    services = [service("api", 500, replicas=3)]
    before = BestFitPlacer().place(nodes, services)
    assert sorted(where(before).values()) == ["a", "a", "a"]  # best fit packs
    after = scale(nodes, services, before, "api", 1)
    assert [(m.source, m.target) for m in after.moves] == [("a", None), ("a", None)]
    assert len(after.plan.placements) == 1


def test_scaling_beyond_capacity_reports_what_fits_nowhere() -> None:
    nodes = [node("a", cores=1)]
    services = [service("api", 600, replicas=1)]
    before = BestFitPlacer().place(nodes, services)
    after = scale(nodes, services, before, "api", 2)
    assert not after.done and "fit nowhere" in after.reason
    assert [u.replica for u in after.plan.unplaced] == [1]


def test_migrating_moves_one_replica_off_the_node_and_nothing_else() -> None:
    nodes, services = rohe_json()
    before = BestFitPlacer().place(nodes, services)
    busiest = max(before.by_node().items(), key=lambda item: len(item[1]))[0]
    mover = before.by_node()[busiest][0].service
    after = migrate(nodes, services, before, mover, away_from=busiest)
    assert after.done
    [move] = after.moves
    assert move.source == busiest and move.target not in {busiest, None}
    changed = {k for k, v in where(after.plan).items() if where(before)[k] != v}
    assert changed == {(mover, move.replica)}
    assert plan_violations(nodes, services, after.plan) == []


def test_a_replica_no_other_node_takes_stays_where_it_is() -> None:
    nodes = [node("a", cores=2), node("b", cores=1)]
    services = [service("big", 1500)]
    before = BestFitPlacer().place(nodes, services)
    after = migrate(nodes, services, before, "big", away_from="a")
    assert not after.done and "no other node takes big" in after.reason
    assert where(after.plan) == where(before)


def test_the_choice_migrates_off_a_saturated_node_else_scales_out() -> None:
    nodes = [node("a", cores=2), node("b", cores=2)]
    services = [service("api", 900, replicas=2), service("db", 100)]
    before = BestFitPlacer().place(nodes, services)
    hot = where(before)[("api", 0)]
    assert utilisation(nodes, services, before)[hot] >= 0.9  # allocated full
    moved = choose_tactic(nodes, services, before, "api", hot)
    assert moved.kind == "migrate" and "saturated" in moved.reason
    # a node that reports low load is not saturated: scale out instead
    calm = choose_tactic(nodes, services, before, "api", hot, reported={hot: 0.3})
    assert calm.kind == "scale" and "not saturated (30%)" in calm.reason
    capped = choose_tactic(nodes, services, before, "api", hot, reported={hot: 0.3}, max_replicas=2)
    assert not capped.done and "at its 2 replicas" in capped.reason


def test_unknown_services_and_nodes_are_named() -> None:
    nodes = [node("a")]
    services = [service("api")]
    plan = BestFitPlacer().place(nodes, services)
    with pytest.raises(InventoryError, match="no service named 'web'"):
        scale(nodes, services, plan, "web", 2)
    with pytest.raises(InventoryError, match="the inventory lacks"):
        scale([node("z")], services, plan, "api", 2)
