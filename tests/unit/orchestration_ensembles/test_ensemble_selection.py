"""Ensemble selection: the search agrees with brute force, limits hold, errors name fields."""

from __future__ import annotations

import math
import random
from itertools import combinations, product
from typing import Any

import pytest
from pydantic import ValidationError

from harmonia.orchestration.ensembles import (
    ConsumerContract,
    EnsembleError,
    MetricObjective,
    Selection,
    ServiceProfile,
    aggregate,
    count_ensembles,
    evaluate_ensemble,
    select_ensemble,
)

CLASSES = ("car", "person", "bike")
AGGREGATIONS = ("prod", "1-prod(1-x)", "sum", "avg", "min", "max")


def random_profiles(n: int, seed: int, nodes: int = 1) -> list[ServiceProfile]:
    """``n`` services, each placeable on ``nodes`` nodes (a slower, costlier second node)."""
    rng = random.Random(seed)
    profiles = []
    for i in range(n):
        accuracy = {c: rng.uniform(0.5, 0.99) for c in CLASSES}
        confidence = rng.uniform(0.4, 0.99)
        for k in range(nodes):
            profiles.append(
                ServiceProfile(
                    name=f"s{i}",
                    node=f"node{k}" if nodes > 1 else None,
                    accuracy=accuracy,
                    confidence=confidence,
                    latency_ms=rng.uniform(5, 140),
                    throughput_rps=rng.uniform(5, 60),
                    cost=rng.uniform(0.1, 3.0),
                    energy_j=rng.uniform(0.01, 1.0),
                    metrics={"quality": rng.uniform(0.0, 1.0)},
                )
            )
    return profiles


def random_contract(seed: int, **overrides: Any) -> ConsumerContract:
    """Random weights, aggregations and scales over every kind of metric."""
    rng = random.Random(1000 + seed)

    def scale() -> str:
        return rng.choice(["linear", "log"])

    metrics: dict[str, Any] = {
        "accuracy": {"bounds": (0.6, 0.9999), "scale": scale(), "weight": rng.uniform(0.5, 2)},
        "accuracy[person]": {
            "bounds": (0.5, 0.999),
            "aggregation": rng.choice(["1-prod(1-x)", "avg", "max", "min"]),
            "weight": rng.uniform(0, 1),
        },
        "miss_rate[car]": {"bounds": (1e-4, 0.5), "scale": "log", "weight": rng.uniform(0.2, 2)},
        "confidence": {
            "bounds": (0.4, 1.0),
            "aggregation": rng.choice(["avg", "max", "min", "prod"]),
            "weight": rng.uniform(0.2, 1),
        },
        "cost": {"bounds": (0.1, 60), "scale": scale(), "weight": rng.uniform(0.5, 2)},
        "energy_j": {"bounds": (0.01, 5), "weight": rng.uniform(0.1, 1)},
        "latency_ms": {"bounds": (5, 150), "weight": rng.uniform(0, 0.5)},
        "quality": {
            "bounds": (0.01, 3),
            "aggregation": rng.choice(AGGREGATIONS),
            "objective": rng.choice(["max", "min"]),
            "scale": scale(),
            "weight": rng.uniform(0, 1),
        },
    }
    chosen = rng.sample(sorted(metrics), k=rng.randint(2, len(metrics)))
    base: dict[str, Any] = {
        "metrics": {name: metrics[name] for name in chosen},
        "deadline_ms": 110,
        "throughput_rps": rng.choice([10, 40, 100]),
        "aggregation_ms": rng.choice([0, 4]),
    }
    base.update(overrides)
    return ConsumerContract.model_validate(base)


def brute_force(profiles: list[ServiceProfile], contract: ConsumerContract) -> float | None:
    """The best utility over every ensemble, through the public evaluator only."""
    by_name: dict[str, list[ServiceProfile]] = {}
    for profile in profiles:
        by_name.setdefault(profile.name, []).append(profile)
    best: float | None = None
    for size in range(1, len(by_name) + 1):
        for names in combinations(by_name, size):
            for members in product(*(by_name[name] for name in names)):
                result = evaluate_ensemble(list(members), contract)
                if result.feasible:
                    assert result.utility is not None
                    best = result.utility if best is None else max(best, result.utility)
    return best


def assert_respects(selection: Selection, contract: ConsumerContract) -> None:
    """The hard limits of the contract hold for the selection."""
    assert selection.feasible
    assert selection.latency_ms is not None and selection.cost is not None
    assert contract.min_members <= len(selection.members)
    assert contract.max_members is None or len(selection.members) <= contract.max_members
    assert len(set(selection.names)) == len(selection.names)
    if contract.deadline_ms is not None:
        assert selection.latency_ms <= contract.deadline_ms + 1e-9
    assert selection.latency_ms == pytest.approx(
        max(m.latency_ms for m in selection.members) + contract.aggregation_ms
    )
    assert selection.cost == pytest.approx(sum(m.cost for m in selection.members))
    if contract.max_cost is not None:
        assert selection.cost <= contract.max_cost + 1e-9
    assert selection.utility is not None
    assert 0 <= selection.utility <= contract.max_utility + 1e-9


CASES = [
    (n, seed, nodes, limits)
    for seed in range(6)
    for n, nodes in ((3, 1), (6, 1), (8, 1), (4, 2))
    for limits in ({}, {"max_members": 2, "min_members": 2}, {"max_cost": 12})
]


@pytest.mark.parametrize(("n", "seed", "nodes", "limits"), CASES)
def test_selection_equals_brute_force(
    n: int, seed: int, nodes: int, limits: dict[str, Any]
) -> None:
    profiles = random_profiles(n, seed, nodes)
    contract = random_contract(seed, **limits)
    expected = brute_force(profiles, contract)
    for method in ("exact", "search", "auto"):
        selection = select_ensemble(profiles, contract, method=method)
        if expected is None:
            assert not selection.feasible, (method, selection.reason)
            assert selection.reason.startswith("no feasible ensemble")
            continue
        assert selection.feasible, (method, selection.reason)
        assert selection.utility == pytest.approx(expected, abs=1e-8), method
        assert selection.optimal and selection.gap == pytest.approx(0.0, abs=1e-12)
        assert_respects(selection, contract)
        # the reported figures are the public evaluator's, member for member
        chosen = {(m.service, m.node) for m in selection.members}
        again = evaluate_ensemble([p for p in profiles if (p.name, p.node) in chosen], contract)
        assert again.utility == pytest.approx(selection.utility)
        assert again.metrics == selection.metrics


def test_exact_enumerates_as_many_ensembles_as_counted() -> None:
    profiles = random_profiles(5, 3, nodes=2)
    contract = random_contract(3, deadline_ms=None)
    selection = select_ensemble(profiles, contract, method="exact")
    assert selection.explored == count_ensembles([2] * 5, 1, 5) == 3**5 - 1


def test_members_are_scaled_to_the_throughput() -> None:
    profiles = random_profiles(8, 11)
    contract = random_contract(11, throughput_rps=100)
    selection = select_ensemble(profiles, contract)
    by_key = {(p.name, p.node): p for p in profiles}
    for member in selection.members:
        profile = by_key[(member.service, member.node)]
        assert member.replicas == math.ceil(100 / profile.throughput_rps)
        assert member.replicas * profile.throughput_rps >= 100
        assert member.cost == pytest.approx(member.replicas * profile.cost)
    assert selection.replicas == sum(m.replicas for m in selection.members)


def test_the_placement_is_chosen_with_the_ensemble() -> None:
    contract = ConsumerContract.model_validate(
        {
            "metrics": {"accuracy": {"bounds": (0.5, 1)}, "cost": {"bounds": (0, 10)}},
            "deadline_ms": 50,
            "throughput_rps": 30,
        }
    )
    common = {"name": "m", "accuracy": {"x": 0.9}}
    services = [
        {**common, "node": "edge", "latency_ms": 40, "throughput_rps": 10, "cost": 1},  # 3 × 1
        {**common, "node": "gpu", "latency_ms": 5, "throughput_rps": 60, "cost": 2},  # 1 × 2
        {**common, "node": "far", "latency_ms": 80, "throughput_rps": 90, "cost": 0.5},  # late
    ]
    selection = select_ensemble(services, contract)
    assert [(m.node, m.replicas, m.cost) for m in selection.members] == [("gpu", 1, 2.0)]
    assert "m@far (latency 80 ms > deadline 50 ms)" in selection.reason


def test_the_search_reports_a_true_bound_when_it_stops_early() -> None:
    profiles = random_profiles(18, 5)
    contract = random_contract(5, deadline_ms=None)
    full = select_ensemble(profiles, contract, method="search")
    assert full.optimal and full.method == "branch_and_bound" and full.utility is not None
    stopped = 0
    for max_nodes in (1, 2, 5, 50):
        partial = select_ensemble(profiles, contract, method="search", max_nodes=max_nodes)
        assert partial.feasible, partial.reason
        assert partial.utility is not None and partial.bound is not None
        assert partial.gap == pytest.approx(partial.bound - partial.utility)
        assert partial.bound >= full.utility - 1e-9  # never claims less than the optimum
        assert partial.utility <= full.utility + 1e-9
        assert partial.bound <= contract.max_utility + 1e-9
        if not partial.optimal:
            stopped += 1
            assert partial.gap is not None and partial.gap > 0
            assert f"stopped at max_nodes {max_nodes}" in partial.reason
    assert stopped >= 2  # the small limits did stop it


def test_auto_searches_when_there_are_too_many_ensembles() -> None:
    profiles = random_profiles(12, 2)
    contract = random_contract(2, deadline_ms=None)
    assert select_ensemble(profiles, contract, exact_limit=100).method == "branch_and_bound"
    assert select_ensemble(profiles, contract).method == "exact"


@pytest.mark.parametrize(
    ("overrides", "services", "words"),
    [
        ({"deadline_ms": 3}, None, ["deadline 3 ms", "s0"]),
        ({"min_members": 9}, None, ["min_members is 9"]),
        ({"max_cost": 0.05}, None, ["max_cost 0.05"]),
        (
            {"throughput_rps": 500},
            [
                {
                    "name": "a",
                    "accuracy": {"x": 0.9},
                    "latency_ms": 1,
                    "throughput_rps": 100,
                    "max_replicas": 4,
                }
            ],
            ["needs 5 replicas", "hosts 4"],
        ),
    ],
)
def test_an_infeasible_contract_is_reported_with_its_reason(
    overrides: dict[str, Any], services: list[dict[str, Any]] | None, words: list[str]
) -> None:
    profiles: list[Any] = services or random_profiles(8, 1)
    if services is None:
        contract = random_contract(1, **overrides)
    else:
        metrics = {"accuracy": {"bounds": (0.5, 1.0)}}
        contract = ConsumerContract.model_validate({"metrics": metrics, **overrides})
    for method in ("exact", "search"):
        selection = select_ensemble(profiles, contract, method=method)
        assert not selection.feasible and selection.members == []
        assert selection.utility is None
        for word in words:
            assert word in selection.reason, selection.reason


def test_aggregations_follow_their_definitions() -> None:
    values = [0.9, 0.5, 0.8]
    assert aggregate("prod", values) == pytest.approx(0.36)
    assert aggregate("1-prod(1-x)", values) == pytest.approx(1 - 0.1 * 0.5 * 0.2)
    assert aggregate("sum", values) == pytest.approx(2.2)
    assert aggregate("avg", values) == pytest.approx(2.2 / 3)
    assert (aggregate("min", values), aggregate("max", values)) == (0.5, 0.9)


def test_normalisation_is_clamped_and_the_log_base_does_not_matter() -> None:
    linear = MetricObjective(bounds=(10, 20))
    assert [linear.score(v) for v in (0, 15, 99)] == [0.0, 0.5, 1.0]
    log = MetricObjective(bounds=(1e-3, 1e-1), scale="log", objective="min")
    assert log.score(1e-2) == pytest.approx(0.5)
    assert log.score(0) == 1.0  # a zero miss rate is the best possible
    assert log.score(1) == 0.0


def test_defaults_and_rohe_spellings_are_resolved_in_the_contract() -> None:
    contract = ConsumerContract.model_validate(
        {
            "metrics": {
                "accuracy": {"bounds": (0.6, 0.99), "aggregation": "rprod"},
                "miss_rate[car]": {"bounds": (1e-4, 0.1), "scale": "log"},
                "confidence": {"bounds": (0.5, 1), "aggregation": "mean"},
                "cost": {"bounds": (0, 100)},
            }
        }
    )
    resolved = {n: (m.aggregation, m.objective) for n, m in contract.metrics.items()}
    assert resolved == {
        "accuracy": ("1-prod(1-x)", "max"),
        "miss_rate[car]": ("prod", "min"),
        "confidence": ("avg", "max"),
        "cost": ("sum", "min"),
    }


def _issues(error: EnsembleError) -> dict[str, str]:
    return {issue.path: issue.reason for issue in error.issues}


def test_bad_services_give_errors_naming_the_field() -> None:
    contract = random_contract(0)
    good = random_profiles(1, 0)[0].model_dump()
    no_latency = {k: v for k, v in good.items() if k != "latency_ms"}
    with pytest.raises(EnsembleError) as caught:
        select_ensemble([good, no_latency, {**good, "throughput_rps": 0}], contract)
    assert set(_issues(caught.value)) == {"services.1.latency_ms", "services.2.throughput_rps"}

    with pytest.raises(EnsembleError) as caught:
        select_ensemble([good, good], contract)
    assert _issues(caught.value) == {"services.1": "s0 is listed twice"}

    with pytest.raises(EnsembleError) as caught:
        select_ensemble([], contract)
    assert "services" in _issues(caught.value)


def test_profiles_that_lack_what_the_contract_names_are_refused_by_field() -> None:
    contract = ConsumerContract.model_validate(
        {
            "metrics": {
                "accuracy[zebra]": {"bounds": (0.5, 1)},
                "confidence": {"bounds": (0.5, 1)},
                "energy_j": {"bounds": (0, 1)},
                "cost": {"bounds": (0, 10), "aggregation": "1-prod(1-x)"},
                "quality": {"bounds": (0, 1), "aggregation": "avg", "objective": "max"},
            }
        }
    )
    service = {"name": "a", "accuracy": {"x": 0.9}, "latency_ms": 1, "throughput_rps": 1, "cost": 3}
    with pytest.raises(EnsembleError) as caught:
        select_ensemble([service], contract)
    issues = _issues(caught.value)
    assert set(issues) == {
        "services.0.accuracy.zebra",
        "services.0.confidence",
        "services.0.energy_j",
        "services.0.cost",
        "services.0.metrics.quality",
    }
    assert "outside [0, 1]" in issues["services.0.cost"]


@pytest.mark.parametrize(
    ("contract", "field"),
    [
        ({"metrics": {"quality": {"bounds": (0, 1)}}}, "metrics.quality.aggregation"),
        ({"metrics": {"cost": {"bounds": (0, 1), "scale": "log"}}}, "bounds"),
        ({"metrics": {"cost": {"bounds": (2, 1)}}}, "bounds"),
        ({"metrics": {"cost[car]": {"bounds": (0, 1)}}}, "cost[car]"),
        ({"metrics": {"cost": {"bounds": (0, 1), "weight": 0}}}, "weight above 0"),
        ({"metrics": {"cost": {"bounds": (0, 1)}}, "deadline_ms": 0}, "deadline_ms"),
        (
            {"metrics": {"cost": {"bounds": (0, 1)}}, "min_members": 3, "max_members": 2},
            "max_members",
        ),
        ({"metrics": {"cost": {"bounds": (0, 1), "aggregation": "median"}}}, "aggregation"),
    ],
)
def test_bad_contracts_give_errors_naming_the_field(contract: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError, match=field.replace("[", r"\[").replace("]", r"\]")):
        ConsumerContract.model_validate(contract)
    with pytest.raises(EnsembleError) as caught:
        select_ensemble(random_profiles(2, 0), contract)
    assert all(issue.path.startswith("contract") for issue in caught.value.issues)


@pytest.mark.parametrize("seed", [0, 1])
def test_the_search_matches_the_enumeration_beyond_brute_force_sizes(seed: int) -> None:
    profiles = random_profiles(13, seed)
    contract = random_contract(seed, max_cost=25)
    exact = select_ensemble(profiles, contract, method="exact")
    search = select_ensemble(profiles, contract, method="search")
    assert exact.feasible and search.feasible and search.optimal
    assert search.utility == pytest.approx(exact.utility, abs=1e-8)
    assert search.explored < exact.explored  # the bound pruned


def test_bad_search_arguments_give_errors_naming_the_field() -> None:
    with pytest.raises(EnsembleError) as caught:
        select_ensemble(
            random_profiles(2, 0),
            random_contract(0),
            method="greedy",  # type: ignore[arg-type]
            max_nodes=0,
            exact_limit=-1,
        )
    assert set(_issues(caught.value)) == {"method", "max_nodes", "exact_limit"}
