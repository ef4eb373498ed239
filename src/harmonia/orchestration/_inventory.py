"""Checks across a whole inventory, beyond what each model checks on its own: unique names,
anti-affinity naming known services, power models where the energy objective needs them."""

from __future__ import annotations

from collections.abc import Sequence

from harmonia.core.errors import Issue
from harmonia.orchestration._errors import InventoryError
from harmonia.orchestration._nodes import Node
from harmonia.orchestration._plan import OBJECTIVES, Objective
from harmonia.orchestration._services import ServiceRequirement

#: how many offending names an issue lists before it counts the rest
LISTED = 5


def _listed(names: Sequence[str]) -> str:
    more = len(names) - LISTED
    return ", ".join(names[:LISTED]) + (f" (+{more} more)" if more > 0 else "")


def check_inventory(
    nodes: Sequence[Node], services: Sequence[ServiceRequirement], objective: Objective
) -> None:
    """Raise `InventoryError` naming every problem that would make a plan meaningless."""
    issues: list[Issue] = []
    if objective not in OBJECTIVES:
        issues.append(Issue("objective", f"is {objective!r}, not one of {', '.join(OBJECTIVES)}"))
    seen: set[str] = set()
    for i, node in enumerate(nodes):
        if node.name in seen:
            issues.append(Issue(f"nodes.{i}.name", f"{node.name!r} names two nodes"))
        seen.add(node.name)
    known: set[str] = set()
    for i, service in enumerate(services):
        if service.name in known:
            issues.append(Issue(f"services.{i}.name", f"{service.name!r} names two services"))
        known.add(service.name)
    for i, service in enumerate(services):
        for j, other in enumerate(service.anti_affinity):
            if other not in known:
                issues.append(
                    Issue(f"services.{i}.anti_affinity.{j}", f"names no service: {other!r}")
                )
    if objective == "energy":
        missing = [node.name for node in nodes if node.power is None]
        if missing:
            issues.append(
                Issue(
                    "nodes",
                    f"the energy objective needs a power model on every node; "
                    f"missing on {_listed(missing)}",
                )
            )
    if issues:
        raise InventoryError(issues)
