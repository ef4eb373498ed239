"""Turning placements into a `Plan`: the objective measured the same way for every placer,
and the gap to a solver's bound."""

from __future__ import annotations

from collections.abc import Sequence

from harmonia.orchestration._nodes import Node
from harmonia.orchestration._objectives import objective_value
from harmonia.orchestration._plan import (
    UNITS,
    Explanation,
    Objective,
    ObjectiveValue,
    Placement,
    Plan,
    PlanStatus,
    Unplaced,
)
from harmonia.orchestration._services import ServiceRequirement


def relative_gap(value: float, bound: float | None) -> float | None:
    """``(value - bound) / value``: 0 when the bound is reached, None without a bound."""
    if bound is None:
        return None
    if value <= 0:
        return 0.0
    return max(0.0, (value - bound) / value)


def make_plan(
    *,
    placer: str,
    status: PlanStatus,
    objective: Objective,
    nodes: Sequence[Node],
    services: Sequence[ServiceRequirement],
    placements: list[Placement],
    unplaced: list[Unplaced],
    explanations: list[Explanation],
    seconds: float,
    bound: float | None = None,
    notes: Sequence[str] = (),
) -> Plan:
    value = objective_value(objective, nodes, services, placements)
    order = {s.name: i for i, s in enumerate(services)}
    return Plan(
        placer=placer,
        status=status,
        objective=ObjectiveValue(name=objective, value=value, bound=bound, unit=UNITS[objective]),
        gap=relative_gap(value, bound),
        placements=placements,
        unplaced=sorted(unplaced, key=lambda u: (order[u.service], u.replica)),
        explanations=explanations,
        seconds=round(seconds, 6),
        notes=list(notes),
    )
