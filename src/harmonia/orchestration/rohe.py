"""ROHE's ``add_node`` and ``add_service`` documents (``{"data": …}``) as Harmonia nodes and
service requirements.

The documents are read against descriptions of ROHE's formats written here; fields ROHE keeps
for its own bookkeeping (ports mapping, instance ids, status…) are ignored, and every error
names its field path (``data.node5.accelerator.GPU0.capacity``). Both spellings ROHE uses are
accepted: its JSON templates' (``cores``, ``cpu_required``, ``accelerator_type``…) and its
YAML templates' (``processor``, ``cpu``, ``type``…).

Mapping:

- per-core figures are per cent of a core in ROHE, millicores here (× 10); what a node has
  ``used`` is taken off its capacity, so a plan places into what is free;
- memory is ROHE's ``rss`` in MiB;
- an accelerator device keeps its name (``GPU0``), type and capacity; a service's
  ``accelerator_required`` entries of 0 mean none (ROHE writes ``{"gpu": 0}``);
- sensitivity 0, 1, 2, 3 is none, CPU, memory, both;
- a service's application (the key above it) becomes its ``application`` label, a node's
  MAC address its ``mac_address`` label.
"""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError

from harmonia.core.errors import Issue
from harmonia.orchestration._errors import InventoryError
from harmonia.orchestration._nodes import Node
from harmonia.orchestration._services import ServiceRequirement

PERCENT_TO_MILLICORES = 10
SENSITIVITY: dict[int, list[str]] = {0: [], 1: ["cpu"], 2: ["memory"], 3: ["cpu", "memory"]}


def _aliases(*names: str) -> Any:
    return Field(validation_alias=AliasChoices(*names))


class _Use(BaseModel):
    model_config = ConfigDict(extra="ignore")

    capacity: float = Field(ge=0)
    used: float = Field(default=0, ge=0)


class _PerCore(BaseModel):
    model_config = ConfigDict(extra="ignore")

    capacity: list[float] = Field(min_length=1)
    used: list[float] = Field(default_factory=list)


class _Memory(BaseModel):
    model_config = ConfigDict(extra="ignore")

    capacity: dict[str, float]
    used: dict[str, float] = Field(default_factory=dict)


class _Accelerator(BaseModel):
    model_config = ConfigDict(extra="ignore")

    accelerator_type: str = _aliases("accelerator_type", "type")
    capacity: float = Field(ge=0)
    used: float = Field(default=0, ge=0)


class _Node(BaseModel):
    model_config = ConfigDict(extra="ignore")

    node_name: str
    mac_address: str | None = _aliases("mac_address", "MAC")
    accelerator: dict[str, _Accelerator] = Field(default_factory=dict)
    cpu: _Use
    memory: _Memory
    cores: _PerCore = _aliases("cores", "processor")


class _Service(BaseModel):
    model_config = ConfigDict(extra="ignore")

    service_name: str
    image: str | None = None
    ports: list[int] = Field(default_factory=list)
    cpu_required: int = _aliases("cpu_required", "cpu")
    memory_required: dict[str, float] = _aliases("memory_required", "memory")
    cores_required: list[float] = _aliases("cores_required", "processor")
    accelerator_required: dict[str, float] = Field(
        default_factory=dict, validation_alias=AliasChoices("accelerator_required", "accelerator")
    )
    sensitivity: int = Field(default=0, ge=0, le=3)
    replicas: int = Field(default=1, ge=0)


class _AddNode(BaseModel):
    model_config = ConfigDict(extra="ignore")

    data: dict[str, _Node]


class _AddService(BaseModel):
    model_config = ConfigDict(extra="ignore")

    data: dict[str, dict[str, _Service]]


def _rss(memory: dict[str, float], path: str) -> float:
    if "rss" not in memory:
        raise InventoryError([Issue(path, "has no 'rss' (resident memory, MiB)")])
    return memory["rss"]


def _validated(model: type[BaseModel], data: Any, source: str | None) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise InventoryError.from_validation(error, source=source) from None


def _converted(model: type[BaseModel], data: dict[str, Any], path: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise InventoryError.from_validation(error, prefix=path) from None


def nodes_from_rohe(document: Any, source: str | None = None) -> list[Node]:
    """ROHE's ``add_node`` document as nodes; `InventoryError` names any bad field."""
    parsed: _AddNode = _validated(_AddNode, document, source)
    nodes = []
    issues: list[Issue] = []
    for key, rohe in parsed.data.items():
        path = f"data.{key}"
        try:
            free = rohe.memory.capacity.get("rss", 0) - rohe.memory.used.get("rss", 0)
            _rss(rohe.memory.capacity, f"{path}.memory.capacity")
            used = rohe.cores.used + [0.0] * (len(rohe.cores.capacity) - len(rohe.cores.used))
            cores = [
                max(0, round((c - u) * PERCENT_TO_MILLICORES))
                for c, u in zip(rohe.cores.capacity, used, strict=False)
            ]
            devices = [
                {
                    "name": name,
                    "type": device.accelerator_type,
                    "capacity": round(device.capacity - device.used),
                }
                for name, device in rohe.accelerator.items()
                if device.capacity - device.used >= 1
            ]
            labels = {"mac_address": rohe.mac_address} if rohe.mac_address else {}
            data = {
                "name": rohe.node_name,
                "cores": cores,
                "cpu_millicores": min(round(rohe.cpu.capacity - rohe.cpu.used), sum(cores)),
                "memory_mib": max(0, round(free)),
                "accelerators": devices,
                "labels": labels,
            }
            nodes.append(_converted(Node, data, path))
        except InventoryError as error:
            issues.extend(error.issues)
    if issues:
        raise InventoryError(issues, source)
    return nodes


def services_from_rohe(document: Any, source: str | None = None) -> list[ServiceRequirement]:
    """ROHE's ``add_service`` document (``data.<application>.<service>``) as service
    requirements; `InventoryError` names any bad field."""
    parsed: _AddService = _validated(_AddService, document, source)
    services = []
    issues: list[Issue] = []
    for application, members in parsed.data.items():
        for key, rohe in members.items():
            path = f"data.{application}.{key}"
            try:
                asked = {k: v for k, v in rohe.accelerator_required.items() if v > 0}
                if len(asked) > 1:
                    raise InventoryError(
                        [
                            Issue(
                                f"{path}.accelerator_required",
                                f"asks for {len(asked)} accelerator types "
                                f"({', '.join(sorted(asked))}); a service takes one",
                            )
                        ]
                    )
                accelerator = (
                    {"type": next(iter(asked)), "share": round(next(iter(asked.values())))}
                    if asked
                    else None
                )
                data = {
                    "name": rohe.service_name,
                    "cpu_millicores": rohe.cpu_required,
                    "cores": [round(c * PERCENT_TO_MILLICORES) for c in rohe.cores_required],
                    "memory_mib": round(_rss(rohe.memory_required, f"{path}.memory_required")),
                    "accelerator": accelerator,
                    "replicas": rohe.replicas,
                    "sensitivity": SENSITIVITY[rohe.sensitivity],
                    "image": rohe.image,
                    "ports": rohe.ports,
                    "labels": {"application": application},
                }
                services.append(_converted(ServiceRequirement, data, path))
            except InventoryError as error:
                issues.extend(error.issues)
    if issues:
        raise InventoryError(issues, source)
    return services


def is_rohe(document: Any) -> bool:
    """Whether a parsed document is one of ROHE's (a mapping under ``data``)."""
    return isinstance(document, dict) and isinstance(document.get("data"), dict)
