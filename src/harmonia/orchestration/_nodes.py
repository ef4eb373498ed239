"""Nodes: what a machine offers to services, and what it costs to run it.

CPU is counted in millicores, as Kubernetes does, and per core, as ROHE does: a node with four
full cores has ``cores: [1000, 1000, 1000, 1000]`` (``cores: 4`` is short for that).
``cpu_millicores`` is what may be allocated in all, the sum of the cores unless some is kept
back for the system.

>>> node = Node.model_validate({"name": "pi-1", "cores": 4, "memory_mib": 4096,
...                             "power": {"idle_w": 2.7, "peak_w": 6.4}})
>>> node.cores, node.cpu_millicores
([1000, 1000, 1000, 1000], 4000)
>>> round(node.power.watts(0.5), 2)
4.55
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from harmonia.core.application import Name

MILLICORES_PER_CORE = 1000
#: well-known label keys (any other key may be used as well)
SITE_LABEL = "site"
ARCHITECTURE_LABEL = "architecture"

Millicores = Annotated[int, Field(ge=0, le=10_000_000)]


class Accelerator(BaseModel):
    """One accelerator device of a node; services ask for a share of one device of a type."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    #: what services ask for (``gpu``, ``tpu``, ``nvidia-a100``…)
    type: Name
    #: shares the device offers; 100 means services ask in per cent of the device
    capacity: int = Field(default=100, ge=1, le=1_000_000)


class PowerModel(BaseModel):
    """Power drawn by a node: ``idle_w`` when on and unloaded, rising linearly with CPU
    utilisation to ``peak_w`` (the usual linear server power model)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    idle_w: float = Field(ge=0, le=1e6)
    peak_w: float = Field(ge=0, le=1e6)

    @model_validator(mode="after")
    def _peak_not_below_idle(self) -> PowerModel:
        if self.peak_w < self.idle_w:
            raise ValueError(f"peak_w ({self.peak_w}) is below idle_w ({self.idle_w})")
        return self

    def watts(self, utilisation: float) -> float:
        """Power at a CPU utilisation in [0, 1]."""
        return self.idle_w + min(max(utilisation, 0.0), 1.0) * (self.peak_w - self.idle_w)


class Node(BaseModel):
    """A machine services can be placed on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    #: capacity of each core in millicores; an integer n stands for n full cores
    cores: list[Millicores] = Field(min_length=1, max_length=4096)
    #: CPU that may be allocated in all (default: the sum of the cores)
    cpu_millicores: Millicores = 0
    memory_mib: int = Field(ge=0, le=1 << 40)
    accelerators: list[Accelerator] = Field(default_factory=list, max_length=64)
    #: free-form labels; ``site`` and ``architecture`` are the well-known ones
    labels: dict[str, str] = Field(default_factory=dict)
    #: needed by the energy objective
    power: PowerModel | None = None
    #: grid carbon intensity where the node runs, gCO2e/kWh
    carbon_g_per_kwh: float | None = Field(default=None, ge=0, le=10_000)

    @model_validator(mode="before")
    @classmethod
    def _expand_shorthands(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        cores = data.get("cores")
        if isinstance(cores, int) and not isinstance(cores, bool):
            if not 1 <= cores <= 4096:
                raise ValueError("cores: a count of cores must be between 1 and 4096")
            data["cores"] = [MILLICORES_PER_CORE] * cores
            cores = data["cores"]
        whole = isinstance(cores, list) and all(
            isinstance(c, int) and not isinstance(c, bool) for c in cores
        )
        if data.get("cpu_millicores") is None and whole:
            data["cpu_millicores"] = sum(cores)
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Node:
        if self.cpu_millicores > sum(self.cores):
            raise ValueError(
                f"cpu_millicores ({self.cpu_millicores}) exceeds the sum of the cores "
                f"({sum(self.cores)})"
            )
        names = [a.name for a in self.accelerators]
        if len(names) != len(set(names)):
            raise ValueError(f"accelerator names repeat: {names}")
        return self

    @property
    def site(self) -> str | None:
        return self.labels.get(SITE_LABEL)

    @property
    def architecture(self) -> str | None:
        return self.labels.get(ARCHITECTURE_LABEL)

    def accelerator_capacity(self, kind: str) -> int:
        """All shares of devices of type ``kind`` (a replica still needs one device's worth)."""
        return sum(a.capacity for a in self.accelerators if a.type == kind)
