"""Service requirements: what each replica of a service needs from the node it runs on.

>>> svc = ServiceRequirement.model_validate({
...     "name": "detector", "cores": [500, 100], "memory_mib": 600,
...     "accelerator": {"type": "gpu", "share": 15}, "replicas": 2, "sensitivity": "cpu"})
>>> svc.cpu_millicores, svc.sensitivity
(600, ['cpu'])
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from harmonia.core.application import Name
from harmonia.orchestration._nodes import Millicores

Contention = Literal["cpu", "memory"]
CONTENTIONS: tuple[Contention, ...] = ("cpu", "memory")


class AcceleratorDemand(BaseModel):
    """A share of one device of an accelerator type (per cent, for devices of capacity 100)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Name
    share: int = Field(ge=1, le=1_000_000)


class ServiceRequirement(BaseModel):
    """What one service asks for, per replica, and how its replicas may be placed.

    ``cores`` are per-core demands in millicores (``[1000, 50]``: one full core and a
    twentieth of another), fitted to distinct cores of a node; ``cpu_millicores`` is the
    total request, the sum of ``cores`` unless given. A service ``sensitivity`` to CPU or
    memory contention keeps it off any node that already runs a replica sensitive to the same
    contention (its own replicas included). ``anti_affinity`` names services (its own name to
    spread its replicas) that never share a node with it, in both directions.
    ``node_selector`` labels must all be on the node. ``image``, ``ports`` and ``labels`` are
    carried for rendering and play no part in placement.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    #: the total request (default: the sum of ``cores``, else 0)
    cpu_millicores: Millicores = 0
    cores: list[Millicores] = Field(default_factory=list, max_length=4096)
    memory_mib: int = Field(default=0, ge=0, le=1 << 40)
    accelerator: AcceleratorDemand | None = None
    replicas: int = Field(default=1, ge=0, le=1_000_000)
    sensitivity: list[Contention] = Field(default_factory=list)
    anti_affinity: list[Name] = Field(default_factory=list, max_length=1000)
    node_selector: dict[str, str] = Field(default_factory=dict)
    image: str | None = Field(default=None, max_length=512)
    ports: list[int] = Field(default_factory=list, max_length=100)
    labels: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _total_from_cores(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("cpu_millicores") is None:
            cores = data.get("cores")
            if isinstance(cores, list) and all(
                isinstance(c, int) and not isinstance(c, bool) for c in cores
            ):
                return {**data, "cpu_millicores": sum(cores)}
        return data

    @field_validator("sensitivity", mode="before")
    @classmethod
    def _sensitivity_forms(cls, value: Any) -> Any:
        """``cpu``, ``memory``, ``both``, ``none`` or a list of the first two."""
        if isinstance(value, str):
            return {"none": [], "both": ["cpu", "memory"]}.get(value, [value])
        return value

    @field_validator("sensitivity")
    @classmethod
    def _sorted_once(cls, value: list[Contention]) -> list[Contention]:
        return sorted(set(value))

    @field_validator("cores")
    @classmethod
    def _drop_idle_cores(cls, value: list[int]) -> list[int]:
        return [c for c in value if c > 0]

    @field_validator("ports")
    @classmethod
    def _valid_ports(cls, value: list[int]) -> list[int]:
        for port in value:
            if not 1 <= port <= 65535:
                raise ValueError(f"port {port} is outside 1-65535")
        return value

    @property
    def spreads(self) -> bool:
        """Whether its replicas must each have a node of their own."""
        return self.name in self.anti_affinity
