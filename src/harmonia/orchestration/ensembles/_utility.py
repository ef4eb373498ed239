"""The consumer's utility of an ensemble: member values, aggregation, normalisation.

Profiles and the contract are compiled once into plain tuples (`Problem`) so that the exact
enumeration and the branch and bound evaluate thousands of ensembles without touching
pydantic; both use the same `Problem.utility`, which is what makes them comparable.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from harmonia.core.errors import Issue
from harmonia.orchestration.ensembles._model import (
    Aggregation,
    ConsumerContract,
    EnsembleError,
    Member,
    Method,
    MetricObjective,
    MetricValue,
    Selection,
    ServiceProfile,
    parse_metric_name,
)

_EPS = 1e-9


def aggregate(op: Aggregation, values: Sequence[float]) -> float:
    """The ensemble's value of a metric from its members' values.

    ``1-prod(1-x)`` is the chance that at least one member is right when members err
    independently — an optimistic estimate of a vote's accuracy, ROHE's ``rprod``.

    >>> aggregate("1-prod(1-x)", [0.9, 0.8])
    0.98
    >>> aggregate("prod", [0.1, 0.2]), aggregate("avg", [1.0, 2.0]), aggregate("max", [3, 1])
    (0.020000000000000004, 1.5, 3)
    """
    if not values:
        raise ValueError("an ensemble has at least one member")
    if op == "sum":
        return math.fsum(values)
    if op == "avg":
        return math.fsum(values) / len(values)
    if op == "prod":
        return math.prod(values)
    if op == "1-prod(1-x)":
        return 1.0 - math.prod(1.0 - value for value in values)
    if op == "min":
        return min(values)
    if op == "max":
        return max(values)
    raise ValueError(f"unknown aggregation {op!r}")


@dataclass(frozen=True, slots=True)
class Candidate:
    """One placement of one service, with what it would cost and contribute."""

    #: position in the caller's list of services
    index: int
    #: position of its service name among the distinct names
    group: int
    profile: ServiceProfile
    replicas: int
    #: replicas × cost per replica
    cost: float
    #: its value of every contract metric, in the contract's order
    values: tuple[float, ...]
    #: why it cannot be a member at all (deadline, replicas its node hosts, cost)
    violations: tuple[str, ...]


@dataclass(frozen=True)
class Problem:
    """A contract and its candidates, compiled for evaluation."""

    contract: ConsumerContract
    metric_names: tuple[str, ...]
    objectives: tuple[MetricObjective, ...]
    ops: tuple[Aggregation, ...]
    #: added to the aggregated value (the aggregation's time, for ``latency_ms``)
    offsets: tuple[float, ...]
    candidates: tuple[Candidate, ...]
    #: distinct service names, in the order first met
    groups: tuple[str, ...]

    @property
    def min_members(self) -> int:
        return self.contract.min_members

    @property
    def max_members(self) -> int:
        limit = self.contract.max_members
        return len(self.groups) if limit is None else min(limit, len(self.groups))

    def value(self, j: int, members: Sequence[Candidate]) -> float:
        """The ensemble's value of metric ``j``."""
        return aggregate(self.ops[j], [member.values[j] for member in members]) + self.offsets[j]

    def utility(self, members: Sequence[Candidate]) -> float:
        """Σ weight × score over the contract's metrics."""
        return math.fsum(
            objective.weight * objective.score(self.value(j, members))
            for j, objective in enumerate(self.objectives)
        )

    def latency(self, members: Sequence[Candidate]) -> float:
        """Members run in parallel: the slowest, plus the aggregation."""
        return max(m.profile.latency_ms for m in members) + self.contract.aggregation_ms

    def ensemble_violations(self, members: Sequence[Candidate]) -> list[str]:
        """What makes this ensemble infeasible (empty when it is feasible)."""
        contract = self.contract
        problems = [f"{m.profile.key}: {why}" for m in members for why in m.violations]
        groups = [m.group for m in members]
        if len(set(groups)) != len(groups):
            problems.append("a service appears twice; an ensemble has one placement of each")
        if len(members) < contract.min_members:
            problems.append(f"{len(members)} member(s) < min_members {contract.min_members}")
        if contract.max_members is not None and len(members) > contract.max_members:
            problems.append(f"{len(members)} members > max_members {contract.max_members}")
        if contract.max_cost is not None and members:
            cost = math.fsum(m.cost for m in members)
            if cost > contract.max_cost + _EPS:
                problems.append(f"cost {cost:g} > max_cost {contract.max_cost:g}")
        return problems

    def selection(
        self,
        members: Sequence[Candidate],
        *,
        method: Method,
        optimal: bool,
        bound: float | None,
        explored: int,
        reason: str,
    ) -> Selection:
        """The public result for ``members`` (a feasible ensemble), in the caller's order."""
        members = sorted(members, key=lambda m: m.index)
        metrics = {}
        for j, name in enumerate(self.metric_names):
            objective = self.objectives[j]
            value = self.value(j, members)
            score = objective.score(value)
            metrics[name] = MetricValue(value=value, score=score, weighted=objective.weight * score)
        utility = math.fsum(metric.weighted for metric in metrics.values())
        if bound is not None:
            bound = max(bound, utility)
        return Selection(
            feasible=True,
            members=[
                Member(
                    service=m.profile.name,
                    node=m.profile.node,
                    replicas=m.replicas,
                    cost=m.cost,
                    latency_ms=m.profile.latency_ms,
                )
                for m in members
            ],
            utility=utility,
            max_utility=self.contract.max_utility,
            metrics=metrics,
            latency_ms=self.latency(members),
            cost=math.fsum(m.cost for m in members),
            replicas=sum(m.replicas for m in members),
            method=method,
            optimal=optimal,
            bound=bound,
            gap=None if bound is None else max(0.0, bound - utility),
            explored=explored,
            reason=reason,
        )


def _coerce(
    services: Iterable[ServiceProfile | Mapping[str, Any]],
    contract: ConsumerContract | Mapping[str, Any],
) -> tuple[list[ServiceProfile], ConsumerContract]:
    """Accept models or plain mappings; errors are re-rooted at ``services.N`` / ``contract``."""
    issues: list[Issue] = []
    profiles: list[ServiceProfile] = []
    for i, service in enumerate(services):
        if isinstance(service, ServiceProfile):
            profiles.append(service)
            continue
        try:
            profiles.append(ServiceProfile.model_validate(service))
        except ValidationError as error:
            issues.extend(EnsembleError.from_validation(error, f"services.{i}").issues)
    if not profiles and not issues:
        issues.append(Issue("services", "no service to choose from"))
    if not isinstance(contract, ConsumerContract):
        try:
            contract = ConsumerContract.model_validate(contract)
        except ValidationError as error:
            issues.extend(EnsembleError.from_validation(error, "contract").issues)
    if issues:
        raise EnsembleError(issues)
    assert isinstance(contract, ConsumerContract)
    return profiles, contract


def _member_value(
    profile: ServiceProfile, kind: str, cls: str | None, replicas: int, where: str
) -> tuple[float, str] | Issue:
    """One member's value of a metric, and the field it came from (for errors)."""
    if kind in ("accuracy", "miss_rate"):
        if cls is None:
            accuracy = math.fsum(profile.accuracy.values()) / len(profile.accuracy)
            field = "accuracy"
        elif cls in profile.accuracy:
            accuracy, field = profile.accuracy[cls], f"accuracy.{cls}"
        else:
            return Issue(f"{where}.accuracy.{cls}", f"no accuracy for class {cls!r}")
        return (accuracy if kind == "accuracy" else 1.0 - accuracy), field
    if kind == "confidence":
        confidence = profile.confidence
        if confidence is None:
            return Issue(f"{where}.confidence", "missing; the contract names a confidence metric")
        if isinstance(confidence, float):
            if cls is not None:
                return Issue(
                    f"{where}.confidence",
                    f"one number; confidence[{cls}] needs confidences per class",
                )
            return confidence, "confidence"
        if cls is None:
            return math.fsum(confidence.values()) / max(1, len(confidence)), "confidence"
        if cls not in confidence:
            return Issue(f"{where}.confidence.{cls}", f"no confidence for class {cls!r}")
        return confidence[cls], f"confidence.{cls}"
    if kind == "latency_ms":
        return profile.latency_ms, "latency_ms"
    if kind == "cost":
        return replicas * profile.cost, "cost"
    if kind == "replicas":
        return float(replicas), "throughput_rps"
    if kind == "energy_j":
        if profile.energy_j is None:
            return Issue(f"{where}.energy_j", "missing; the contract names energy_j")
        return profile.energy_j, "energy_j"
    if kind not in profile.metrics:
        return Issue(f"{where}.metrics.{kind}", f"missing; the contract names {kind!r}")
    return profile.metrics[kind], f"metrics.{kind}"


def compile_problem(
    services: Iterable[ServiceProfile | Mapping[str, Any]],
    contract: ConsumerContract | Mapping[str, Any],
) -> Problem:
    """Validate profiles against the contract and compile them; raise `EnsembleError`
    listing every missing or out-of-domain value with its field path."""
    profiles, contract = _coerce(services, contract)
    issues: list[Issue] = []
    names = tuple(contract.metrics)
    parsed = [parse_metric_name(name) for name in names]
    objectives = tuple(contract.metrics[name] for name in names)
    ops: tuple[Aggregation, ...] = tuple(o.aggregation or "avg" for o in objectives)
    offsets = tuple(contract.aggregation_ms if kind == "latency_ms" else 0.0 for kind, _ in parsed)
    groups: dict[str, int] = {}
    seen: set[tuple[str, str | None]] = set()
    candidates: list[Candidate] = []
    for i, profile in enumerate(profiles):
        where = f"services.{i}"
        if (profile.name, profile.node) in seen:
            issues.append(Issue(where, f"{profile.key} is listed twice"))
            continue
        seen.add((profile.name, profile.node))
        group = groups.setdefault(profile.name, len(groups))
        replicas = profile.replicas_for(contract.throughput_rps)
        values: list[float] = []
        for (kind, cls), name, op in zip(parsed, names, ops, strict=True):
            got = _member_value(profile, kind, cls, replicas, where)
            if isinstance(got, Issue):
                issues.append(got)
                continue
            value, field = got
            if op == "prod" and value < 0:
                issues.append(
                    Issue(f"{where}.{field}", f"{value:g} < 0; contract.metrics.{name} multiplies")
                )
            if op == "1-prod(1-x)" and not 0.0 <= value <= 1.0:
                issues.append(
                    Issue(
                        f"{where}.{field}",
                        f"{value:g} is outside [0, 1], which contract.metrics.{name}'s "
                        "aggregation 1-prod(1-x) needs",
                    )
                )
            values.append(value)
        candidates.append(
            Candidate(
                index=i,
                group=group,
                profile=profile,
                replicas=replicas,
                cost=replicas * profile.cost,
                values=tuple(values),
                violations=tuple(_violations(profile, replicas, contract)),
            )
        )
    if issues:
        raise EnsembleError(issues)
    return Problem(
        contract=contract,
        metric_names=names,
        objectives=objectives,
        ops=ops,
        offsets=offsets,
        candidates=tuple(candidates),
        groups=tuple(groups),
    )


def _violations(profile: ServiceProfile, replicas: int, contract: ConsumerContract) -> list[str]:
    """Why this placement can join no ensemble: each hard limit it breaks on its own."""
    problems = []
    if contract.deadline_ms is not None:
        total = profile.latency_ms + contract.aggregation_ms
        if total > contract.deadline_ms + _EPS:
            extra = (
                f" + aggregation {contract.aggregation_ms:g} ms" if contract.aggregation_ms else ""
            )
            problems.append(
                f"latency {profile.latency_ms:g} ms{extra} > deadline {contract.deadline_ms:g} ms"
            )
    if profile.max_replicas is not None and replicas > profile.max_replicas:
        problems.append(
            f"needs {replicas} replicas for {contract.throughput_rps:g} rps at "
            f"{profile.throughput_rps:g} rps each; its node hosts {profile.max_replicas}"
        )
    cost = replicas * profile.cost
    if contract.max_cost is not None and cost > contract.max_cost + _EPS:
        problems.append(f"its {replicas} replica(s) cost {cost:g} > max_cost {contract.max_cost:g}")
    return problems


def evaluate_ensemble(
    members: Sequence[ServiceProfile | Mapping[str, Any]],
    contract: ConsumerContract | Mapping[str, Any],
) -> Selection:
    """The consumer's utility of exactly these members, and whether they meet the contract.

    Useful to compare a hand-picked ensemble with the selected one, and as the oracle the
    tests check the search against.

    >>> contract = ConsumerContract(metrics={"accuracy": {"bounds": (0.5, 1.0)}},
    ...                             deadline_ms=100, throughput_rps=30)
    >>> a = ServiceProfile(name="a", accuracy={"x": 0.8}, latency_ms=50, throughput_rps=20)
    >>> b = ServiceProfile(name="b", accuracy={"x": 0.5}, latency_ms=20, throughput_rps=40)
    >>> result = evaluate_ensemble([a, b], contract)
    >>> round(result.metrics["accuracy"].value, 3), round(result.utility, 3), result.replicas
    (0.9, 0.8, 3)
    """
    problem = compile_problem(members, contract)
    chosen = list(problem.candidates)
    violations = problem.ensemble_violations(chosen)
    if violations:
        return Selection(
            feasible=False,
            max_utility=problem.contract.max_utility,
            method="evaluation",
            optimal=False,
            reason="infeasible: " + "; ".join(violations),
        )
    return problem.selection(
        chosen, method="evaluation", optimal=False, bound=None, explored=1, reason="as given"
    )
