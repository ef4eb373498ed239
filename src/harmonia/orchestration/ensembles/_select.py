"""Choosing the ensemble: exact enumeration for small cases, branch and bound for large ones.

The utility is a weighted sum of clamped, normalised aggregates — non-linear (products,
logarithms), so a linear solver would need an approximation of it. A branch and bound over
the same utility needs none: it is exact when it finishes, and when it stops at its node
limit it still knows an upper bound on the optimum, hence its gap. The bound relaxes the
coupling between metrics: each metric alone takes its best aggregate over the ensembles still
reachable from a node, which is found exactly by sorting, because every aggregation is
monotone in each member's value (for ``prod``, given values ≥ 0, which compilation checks):
for a given number of extra members, the best values win.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from itertools import combinations, product
from typing import Any, Literal

from harmonia.core.errors import Issue
from harmonia.orchestration.ensembles._model import (
    ConsumerContract,
    EnsembleError,
    Method,
    Selection,
    ServiceProfile,
)
from harmonia.orchestration.ensembles._utility import Candidate, Problem, compile_problem

SearchMethod = Literal["auto", "exact", "search"]
_METHODS = ("auto", "exact", "search")

#: ties in utility closer than this are ties (the search prunes within it)
_TOL = 1e-9


def count_ensembles(sizes: Sequence[int], min_members: int, max_members: int) -> int:
    """How many ensembles there are: subsets of services of an allowed size, times the
    placements of each member (an elementary symmetric polynomial of ``sizes``).

    >>> count_ensembles([1] * 8, 1, 8), count_ensembles([2, 3], 1, 2)
    (255, 11)
    """
    # ways[k] = number of ensembles of k members among the services seen so far
    ways = [1] + [0] * max_members
    for size in sizes:
        for k in range(max_members, 0, -1):
            ways[k] += ways[k - 1] * size
    return sum(ways[min_members : max_members + 1])


def select_ensemble(
    services: Iterable[ServiceProfile | Mapping[str, Any]],
    contract: ConsumerContract | Mapping[str, Any],
    *,
    method: SearchMethod = "auto",
    exact_limit: int = 20_000,
    max_nodes: int = 200_000,
) -> Selection:
    """The ensemble and placement that maximise the consumer's utility under its contract.

    ``method``: ``exact`` enumerates every ensemble; ``search`` runs the branch and bound,
    stopping after ``max_nodes`` nodes with its gap to the optimum; ``auto`` enumerates when
    there are at most ``exact_limit`` ensembles. An infeasible contract is no exception: the
    selection says ``feasible=False`` and why. Invalid inputs raise `EnsembleError`.

    >>> contract = ConsumerContract(
    ...     metrics={"accuracy": {"bounds": (0.5, 1.0), "weight": 2},
    ...              "cost": {"bounds": (0, 20)}},
    ...     deadline_ms=100, throughput_rps=40)
    >>> services = [
    ...     ServiceProfile(name="big", accuracy={"x": 0.95}, latency_ms=90,
    ...                    throughput_rps=10, cost=4),
    ...     ServiceProfile(name="small", accuracy={"x": 0.8}, latency_ms=20,
    ...                    throughput_rps=40, cost=1),
    ...     ServiceProfile(name="slow", accuracy={"x": 0.99}, latency_ms=250,
    ...                    throughput_rps=40, cost=1)]
    >>> chosen = select_ensemble(services, contract)
    >>> chosen.names, [m.replicas for m in chosen.members], chosen.optimal
    (['small'], [1], True)
    >>> print(chosen.reason)  # doctest: +ELLIPSIS
    chose small ×1: utility 2.15 of 3 ...; excluded slow (latency 250 ms > deadline 100 ms); ...
    """
    bad = [Issue("exact_limit", "must be ≥ 0")] if exact_limit < 0 else []
    bad += [Issue("max_nodes", "must be ≥ 1")] if max_nodes < 1 else []
    bad += [Issue("method", f"{method!r}: auto, exact or search")] if method not in _METHODS else []
    if bad:
        raise EnsembleError(bad)
    problem = compile_problem(services, contract)
    usable: dict[int, list[Candidate]] = {}
    for candidate in problem.candidates:
        if not candidate.violations:
            usable.setdefault(candidate.group, []).append(candidate)
    excluded = [
        f"{c.profile.key} ({'; '.join(c.violations)})" for c in problem.candidates if c.violations
    ]
    low, high = problem.min_members, min(problem.max_members, len(usable))
    if len(usable) < low:
        why = (
            f"{len(usable)} service(s) meet the limits on their own, "
            f"min_members is {problem.min_members}"
        )
        return _infeasible(problem, why, excluded, method="exact", optimal=True)
    groups = list(usable.values())
    total = count_ensembles([len(g) for g in groups], low, high)
    if method == "exact" or (method == "auto" and total <= exact_limit):
        return _exact(problem, groups, low, high, excluded, total)
    return _branch_and_bound(problem, groups, low, high, excluded, max_nodes)


def _infeasible(
    problem: Problem,
    why: str,
    excluded: list[str],
    *,
    method: Method,
    optimal: bool,
    explored: int = 0,
) -> Selection:
    reason = f"no feasible ensemble: {why}"
    if excluded:
        reason += "; excluded " + ", ".join(excluded)
    return Selection(
        feasible=False,
        max_utility=problem.contract.max_utility,
        method=method,
        optimal=optimal,
        explored=explored,
        reason=reason,
    )


def _cost_infeasibility(problem: Problem, groups: list[list[Candidate]], low: int) -> str:
    """The only limit that binds whole ensembles rather than single members is the cost."""
    cheapest = sorted(min(c.cost for c in group) for group in groups)[:low]
    return (
        f"the cheapest {low} member(s) cost {math.fsum(cheapest):g} > "
        f"max_cost {problem.contract.max_cost or 0:g}"
    )


def _better(members: Sequence[Candidate], best: Sequence[Candidate]) -> bool:
    """On equal utility, prefer fewer members, then a lower cost, then names in order: a
    deterministic answer that does not spend more than it needs to."""

    def key(ms: Sequence[Candidate]) -> tuple[int, float, list[int]]:
        return (len(ms), math.fsum(m.cost for m in ms), sorted(m.index for m in ms))

    return key(members) < key(best)


def _exact(
    problem: Problem,
    groups: list[list[Candidate]],
    low: int,
    high: int,
    excluded: list[str],
    total: int,
) -> Selection:
    max_cost = problem.contract.max_cost
    best: tuple[Candidate, ...] | None = None
    best_utility = -math.inf
    explored = 0
    for size in range(low, high + 1):
        for chosen_groups in combinations(groups, size):
            for members in product(*chosen_groups):
                explored += 1
                if max_cost is not None and math.fsum(m.cost for m in members) > max_cost + _TOL:
                    continue
                utility = problem.utility(members)
                if (
                    best is None
                    or utility > best_utility + 1e-12
                    or (abs(utility - best_utility) <= 1e-12 and _better(members, best))
                ):
                    best, best_utility = members, utility
    if best is None:
        why = _cost_infeasibility(problem, groups, low)
        return _infeasible(problem, why, excluded, method="exact", optimal=True, explored=explored)
    best = tuple(sorted(best, key=lambda m: m.index))
    how = f"optimal: all {total} ensembles enumerated"
    return problem.selection(
        best,
        method="exact",
        optimal=True,
        bound=best_utility,
        explored=explored,
        reason=_explain(problem, best, excluded, how),
    )


class _Accumulator:
    """A running aggregate, so the bound adds members one at a time."""

    __slots__ = ("count", "high", "low", "op", "product", "total")

    def __init__(self, op: str) -> None:
        self.op = op
        self.total = 0.0
        self.count = 0
        self.product = 1.0
        self.low = math.inf
        self.high = -math.inf

    def add(self, value: float) -> None:
        self.total += value
        self.count += 1
        if self.op == "prod":
            self.product *= value
        elif self.op == "1-prod(1-x)":
            self.product *= 1.0 - value
        self.low = min(self.low, value)
        self.high = max(self.high, value)

    def value(self) -> float:
        op = self.op
        if op == "sum":
            return self.total
        if op == "avg":
            return self.total / self.count
        if op == "prod":
            return self.product
        if op == "1-prod(1-x)":
            return 1.0 - self.product
        return self.low if op == "min" else self.high


class _Bounder:
    """Upper bound of the utility over every ensemble that extends ``chosen`` with services
    at branch positions ≥ ``depth``, each metric relaxed to its own best choice."""

    def __init__(self, problem: Problem, groups: list[list[Candidate]], low: int, high: int):
        self.problem = problem
        self.low, self.high, self.count = low, high, len(groups)
        up = [o.objective != "min" for o in problem.objectives]
        # per metric: (best value of a service over its placements, its branch position),
        # best first for the direction the metric's score improves in
        self.orders: list[list[tuple[float, int]]] = []
        for j, rising in enumerate(up):
            pick = max if rising else min
            values = [(pick(c.values[j] for c in group), pos) for pos, group in enumerate(groups)]
            values.sort(key=lambda item: item[1])
            values.sort(key=lambda item: item[0], reverse=rising)  # stable: ties by position
            self.orders.append(values)
        self.min_costs = [min(c.cost for c in group) for group in groups]

    def reachable(self, depth: int, size: int) -> tuple[int, int]:
        """(members still needed, members still allowed) from a node."""
        need = max(self.low - size, 0 if size else 1)
        return need, min(self.high - size, self.count - depth)

    def min_extra_cost(self, depth: int, size: int) -> float:
        need, _ = self.reachable(depth, size)
        return math.fsum(sorted(self.min_costs[depth:])[:need]) if need else 0.0

    def bound(self, depth: int, chosen: Sequence[Candidate]) -> float:
        """For each number r of members still to add, every metric takes its r best
        values; the bound is the best over r of the weighted sum. Fixing r couples the
        metrics that pull apart on size (accuracy wants members, cost wants few)."""
        need, cap = self.reachable(depth, len(chosen))
        if need > cap:
            return -math.inf
        problem = self.problem
        totals = [0.0] * (cap - need + 1)
        for j, objective in enumerate(problem.objectives):
            acc = _Accumulator(problem.ops[j])
            for member in chosen:
                acc.add(member.values[j])
            weight, offset = objective.weight, problem.offsets[j]
            if need == 0:
                totals[0] += weight * objective.score(acc.value() + offset)
            added = 0
            for value, pos in self.orders[j]:
                if added >= cap:
                    break
                if pos < depth:
                    continue
                acc.add(value)
                added += 1
                if added >= need:
                    totals[added - need] += weight * objective.score(acc.value() + offset)
        return max(totals)


def _branch_and_bound(
    problem: Problem,
    groups: list[list[Candidate]],
    low: int,
    high: int,
    excluded: list[str],
    max_nodes: int,
) -> Selection:
    """Depth-first over services (include a placement, or leave the service out), best
    services first so that good ensembles come early and prune the rest."""
    standalone = {id(c): problem.utility([c]) for group in groups for c in group}
    groups = [sorted(g, key=lambda c: -standalone[id(c)]) for g in groups]
    groups.sort(key=lambda g: -standalone[id(g[0])])
    bounder = _Bounder(problem, groups, low, high)
    max_cost = problem.contract.max_cost
    ceiling = problem.contract.max_utility
    best: tuple[Candidate, ...] | None = None
    best_utility = -math.inf
    # (depth, chosen, cost, the parent's bound: valid for the whole subtree)
    stack: list[tuple[int, tuple[Candidate, ...], float, float]] = [(0, (), 0.0, ceiling)]
    nodes = 0
    while stack and nodes < max_nodes:
        depth, chosen, cost, parent_bound = stack.pop()
        if parent_bound <= best_utility + _TOL:
            continue
        nodes += 1
        bound = min(bounder.bound(depth, chosen), parent_bound)
        if bound <= best_utility + _TOL or depth == len(groups):
            continue
        if max_cost is not None and cost + bounder.min_extra_cost(depth, len(chosen)) > (
            max_cost + _TOL
        ):
            continue
        need, cap = bounder.reachable(depth + 1, len(chosen))
        if depth + 1 < len(groups) and need <= cap:
            # leave this service out (at the last one, that set was evaluated when made)
            stack.append((depth + 1, chosen, cost, bound))
        if len(chosen) >= high:
            continue
        for candidate in reversed(groups[depth]):  # the best placement is popped first
            new_cost = cost + candidate.cost
            if max_cost is not None and new_cost > max_cost + _TOL:
                continue
            members = (*chosen, candidate)
            if len(members) >= low:
                utility = problem.utility(members)
                if utility > best_utility + 1e-12:
                    best, best_utility = members, utility
            stack.append((depth + 1, members, new_cost, bound))
    open_bound = max((entry[3] for entry in stack), default=-math.inf)
    finished = not stack or open_bound <= best_utility + _TOL
    if best is None:
        if finished:
            why = _cost_infeasibility(problem, groups, low)
            return _infeasible(
                problem, why, excluded, method="branch_and_bound", optimal=True, explored=nodes
            )
        why = f"none found within max_nodes {max_nodes} (the search stopped; feasibility unknown)"
        return _infeasible(
            problem, why, excluded, method="branch_and_bound", optimal=False, explored=nodes
        )
    best = tuple(sorted(best, key=lambda m: m.index))
    if finished:
        upper = best_utility
        how = f"optimal: branch and bound proved it after {nodes} nodes"
    else:
        upper = min(ceiling, max(open_bound, best_utility))
        how = (
            f"stopped at max_nodes {max_nodes}: at most {upper - best_utility:.4g} below the "
            f"optimum (bound {upper:.4g})"
        )
    return problem.selection(
        best,
        method="branch_and_bound",
        optimal=finished,
        bound=upper,
        explored=nodes,
        reason=_explain(problem, best, excluded, how),
    )


def _explain(problem: Problem, members: Sequence[Candidate], excluded: list[str], how: str) -> str:
    """One paragraph a person can check: who, the utility and its parts, the limits."""
    contract = problem.contract
    who = ", ".join(f"{m.profile.key} ×{m.replicas}" for m in members)
    parts = []
    for j, name in enumerate(problem.metric_names):
        objective = problem.objectives[j]
        value = problem.value(j, members)
        parts.append(f"{name} {value:.4g} → {objective.score(value):.2f}×{objective.weight:g}")
    utility = problem.utility(members)
    text = f"chose {who}: utility {utility:.4g} of {contract.max_utility:g} ({', '.join(parts)})"
    if excluded:
        text += "; excluded " + ", ".join(excluded)
    limits = [f"latency {problem.latency(members):g} ms"]
    if contract.deadline_ms is not None:
        limits[0] += f" ≤ deadline {contract.deadline_ms:g} ms"
    limits.append(f"{contract.throughput_rps:g} rps by scaling members")
    cost = math.fsum(m.cost for m in members)
    limits.append(
        f"cost {cost:g}" + (f" ≤ max_cost {contract.max_cost:g}" if contract.max_cost else "")
    )
    return f"{text}; {', '.join(limits)}; {how}"
