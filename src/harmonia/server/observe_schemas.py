"""Replies (and the one body) of what was measured of an application: its decision windows
(``/apps/{name}/windows``), its pipeline's signals (``/apps/{name}/pipeline``) and its
energy (``/apps/{name}/energy``, and what a node's own counter reports through
``/apps/{name}/nodes/{node}/energy``). Read-only views of the stored telemetry.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from harmonia.server.fields import Finite, NonNegative


class EnergyNodeOut(BaseModel):
    """A node an instance of the application runs on: its carbon intensity and where that
    came from, and, if it reports its own energy counter, what the counter says it spent
    over the span and what of that went to this application's samples."""

    carbon_g_per_kwh: float
    carbon_source: str = Field(examples=["node label", "region se", "default"])
    counter_j: float | None = Field(description="null: the node reports no counter")
    apportioned_j: float | None


class EnergyOut(BaseModel):
    """Where an application's energy goes over [start, end): per stage, service or instance
    (``by``), ``total_j``, ``j_per_request``, ``share`` of the pipeline's joules, ``g_co2e``
    and ``g_co2e_per_request``, ``node_j`` (the joules that came from node counters), and
    ``samples``. ``requests`` counts traces (and untraced samples of the first stages), so
    the groups' joules per request add up to the whole's."""

    start: float
    end: float
    samples: int
    by: str
    requests: int
    total_j: float
    total_g_co2e: float
    groups: dict[str, dict[str, float | None]]
    methods: dict[str, list[str]] = Field(
        description="per group, how its joules were obtained: probe, node counter, "
        "apportioned by CPU time, or node counter, apportioned by latency (CPU-time proxy)"
    )
    nodes: dict[str, EnergyNodeOut]


class NodeEnergyIn(BaseModel):
    """What a node's own energy counter (RAPL, NVML, a smart plug) says the whole node
    spent over [start, end): one reporter per node, readings end to end."""

    model_config = ConfigDict(extra="forbid")
    start: Finite
    end: Finite
    joules: NonNegative

    @model_validator(mode="after")
    def _an_interval(self) -> NodeEnergyIn:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class NodeEnergyOut(BaseModel):
    """A node's energy reading, as stored."""

    node: str
    start: float
    end: float
    joules: float


class PipelineOut(BaseModel):
    """Signals of an application over [start, end): per service, per stage (over its
    services and instances) and end to end (over the traces its samples carry)."""

    start: float
    end: float
    samples: int = Field(description="samples read (at most the route's limit)")
    services: dict[str, dict[str, float | None]]
    stages: dict[str, dict[str, float | None]]
    end_to_end: dict[str, float | None]
    instances: dict[str, dict[str, int]] = Field(description="samples per instance, by service")
    models: dict[str, dict[str, float]] = Field(description="each model's share, by service")
    serving: dict[str, str | None] = Field(description="the model each service's loop sees")


class WindowOut(BaseModel):
    """A closed decision window: its span, what served, and every signal the monitor
    computed (``null`` where a signal had no value)."""

    service: str
    start: float
    end: float
    model: str
    version: int | None
    count: int
    signals: dict[str, float | None]
    #: a point that stands for several windows (``points=`` on a long range): its span
    #: is theirs, ``count`` their samples, ``model`` the one that served most of them
    downsampled: bool = False
    #: how many closed windows the point stands for (1: a window as it closed)
    windows: int = 1
    #: samples ``model`` served in a downsampled point (null for a window as it closed)
    model_count: int | None = None
