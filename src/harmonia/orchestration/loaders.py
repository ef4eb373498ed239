"""Reading inventories from files: Harmonia's YAML (or JSON) and ROHE's documents.

The only module of `harmonia.orchestration` that touches files; the parsing half
(`parse_nodes`, `parse_services`) takes already-parsed data, for callers that have it (the
server's API).

A nodes file is ``{"nodes": [...]}`` (or the bare list), a services file
``{"services": [...]}``; one file may hold both. A ROHE ``add_node`` or ``add_service``
document (``{"data": …}``) is recognised and converted (`harmonia.orchestration.rohe`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from harmonia.core.errors import Issue
from harmonia.orchestration._errors import InventoryError
from harmonia.orchestration._nodes import Node
from harmonia.orchestration._services import ServiceRequirement
from harmonia.orchestration.rohe import is_rohe, nodes_from_rohe, services_from_rohe

_NODES = TypeAdapter(list[Node])
_SERVICES = TypeAdapter(list[ServiceRequirement])


def read_document(path: str | Path) -> Any:
    """A YAML or JSON file, parsed (JSON is YAML); `InventoryError` if it is neither."""
    import yaml

    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise InventoryError(
            [Issue("", f"cannot read: {error.strerror or error}")], source
        ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise InventoryError([Issue("", f"neither YAML nor JSON: {error}")], source) from None


def _listed(document: Any, key: str, source: str | None) -> tuple[Any, str]:
    if isinstance(document, dict) and key in document:
        return document[key], key
    if isinstance(document, list):
        return document, key
    raise InventoryError(
        [Issue(key, f"missing: expected a mapping with {key!r} (a list), or the list itself")],
        source,
    )


def parse_nodes(document: Any, source: str | None = None) -> list[Node]:
    """Nodes from a parsed document, Harmonia's or ROHE's ``add_node``."""
    if is_rohe(document):
        return nodes_from_rohe(document, source)
    items, key = _listed(document, "nodes", source)
    try:
        return _NODES.validate_python(items)
    except ValidationError as error:
        raise InventoryError.from_validation(error, prefix=key, source=source) from None


def parse_services(document: Any, source: str | None = None) -> list[ServiceRequirement]:
    """Service requirements from a parsed document, Harmonia's or ROHE's ``add_service``."""
    if is_rohe(document):
        return services_from_rohe(document, source)
    items, key = _listed(document, "services", source)
    try:
        return _SERVICES.validate_python(items)
    except ValidationError as error:
        raise InventoryError.from_validation(error, prefix=key, source=source) from None


def load_nodes(path: str | Path) -> list[Node]:
    """Nodes from a YAML or JSON file."""
    return parse_nodes(read_document(path), str(path))


def load_services(path: str | Path) -> list[ServiceRequirement]:
    """Service requirements from a YAML or JSON file."""
    return parse_services(read_document(path), str(path))
