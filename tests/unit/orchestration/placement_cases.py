"""Inventories the orchestration tests share: ROHE's shipped examples and small clusters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harmonia.orchestration import Node, ServiceRequirement
from harmonia.orchestration.loaders import load_nodes, load_services

ROHE = Path(__file__).resolve().parents[2] / "data" / "rohe"


def rohe_json() -> tuple[list[Node], list[ServiceRequirement]]:
    return load_nodes(ROHE / "add_node.json"), load_services(ROHE / "add_service.json")


def rohe_yaml() -> tuple[list[Node], list[ServiceRequirement]]:
    return load_nodes(ROHE / "add_node.yaml"), load_services(ROHE / "add_service.yaml")


def node(name: str, cores: int = 4, memory: int = 4096, **fields: Any) -> Node:
    """A node of ``cores`` full cores with a power model proportional to its size."""
    power = {"idle_w": 2.0 * cores, "peak_w": 5.0 * cores}
    return Node.model_validate(
        {"name": name, "cores": cores, "memory_mib": memory, "power": power, **fields}
    )


def service(name: str, cpu: int = 500, **fields: Any) -> ServiceRequirement:
    return ServiceRequirement.model_validate({"name": name, "cpu_millicores": cpu, **fields})
