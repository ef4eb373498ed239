"""What ``POST /apps/{name}/telemetry`` accepts and answers; batches that come through the
MQTT and AMQP bridges are validated against the same `BATCH` and `COLUMN_BATCH`. It is the
benchmarked ingestion path, so its bodies are TypedDicts that pydantic-core validates
straight from JSON, and its reply (`TelemetryOut`) is only documented, never validated.
"""

from __future__ import annotations

from typing import Annotated, Any, NotRequired

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, with_config
from typing_extensions import TypedDict

from harmonia.core.actions import ActionKind
from harmonia.server.fields import Finite, Label, Name, NonNegative, TraceId, Version
from harmonia.server.openapi import MAX_BATCH


class ActionMessage(BaseModel):
    """An action as a telemetry reply carries it to the managed system (the sdk's
    `harmonia.sdk.ActionMessage`)."""

    id: int
    service: str = Field(description="the service it aims at")
    instance: str | None = Field(description="the instance it aims at; null: every one")
    kind: ActionKind = Field(description="what the managed system is asked to do")
    model: str | None
    version: int | None
    reason: str
    trigger: str
    values: dict[str, float]


class TelemetryOut(BaseModel):
    """How many samples were stored, and the actions for the system to carry out (pull)."""

    accepted: int
    actions: list[ActionMessage]


@with_config(ConfigDict(extra="forbid"))
class SampleIn(TypedDict):
    """One telemetry sample as the sdk sends it (the app and instance come with the batch).

    A TypedDict, not a model: pydantic-core validates it straight from JSON into the dict the
    store inserts, several times faster than building and dumping a model per sample.
    """

    model: Name
    ts: Finite
    stage: NotRequired[Name | None]
    service: NotRequired[Name]
    trace_id: NotRequired[TraceId | None]
    model_version: NotRequired[Version | None]
    latency_ms: NotRequired[NonNegative | None]
    energy_j: NotRequired[NonNegative | None]
    energy_source: NotRequired[Label | None]
    prediction: NotRequired[Finite | None]
    target: NotRequired[Finite | None]
    drift_value: NotRequired[Finite | None]
    metrics: NotRequired[Annotated[dict[Name, Finite], Field(max_length=100)]]


@with_config(ConfigDict(extra="forbid"))
class BatchIn(TypedDict):
    instance: NotRequired[Name]
    samples: Annotated[list[SampleIn], Field(min_length=1, max_length=MAX_BATCH)]


_Column = Field(max_length=MAX_BATCH)


@with_config(ConfigDict(extra="forbid"))
class ColumnsIn(TypedDict):
    """A batch's samples as columns: each field of `SampleIn` a list of the same length,
    value ``i`` of every column being sample ``i``; null is a sample's "not given" in any
    column (its default: ``service`` "default", ``metrics`` none). pydantic-core checks a
    list of numbers in one tight loop, several times faster than the same values spread
    over objects, and the server builds each row from what varies between samples only."""

    model: Annotated[list[Name], Field(min_length=1, max_length=MAX_BATCH)]
    ts: Annotated[list[Finite], Field(min_length=1, max_length=MAX_BATCH)]
    stage: NotRequired[Annotated[list[Name | None], _Column]]
    service: NotRequired[Annotated[list[Name | None], _Column]]
    trace_id: NotRequired[Annotated[list[TraceId | None], _Column]]
    model_version: NotRequired[Annotated[list[Version | None], _Column]]
    latency_ms: NotRequired[Annotated[list[NonNegative | None], _Column]]
    energy_j: NotRequired[Annotated[list[NonNegative | None], _Column]]
    energy_source: NotRequired[Annotated[list[Label | None], _Column]]
    prediction: NotRequired[Annotated[list[Finite | None], _Column]]
    target: NotRequired[Annotated[list[Finite | None], _Column]]
    drift_value: NotRequired[Annotated[list[Finite | None], _Column]]
    metrics: NotRequired[
        Annotated[list[Annotated[dict[Name, Finite], Field(max_length=100)] | None], _Column]
    ]


@with_config(ConfigDict(extra="forbid"))
class ColumnBatchIn(TypedDict):
    """A telemetry batch in columns (``{"instance": ..., "columns": {...}}``), the form the
    sdk sends; the row form (`BatchIn`) stays accepted."""

    instance: NotRequired[Name]
    columns: ColumnsIn


SAMPLE_DEFAULTS: dict[str, Any] = {
    "stage": None,
    "service": "default",
    "trace_id": None,
    "model_version": None,
    "latency_ms": None,
    "energy_j": None,
    "energy_source": None,
    "prediction": None,
    "target": None,
    "drift_value": None,
    "metrics": {},
}


BATCH = TypeAdapter(BatchIn)
COLUMN_BATCH = TypeAdapter(ColumnBatchIn)
#: a batch as the OpenAPI schema shows it (the route validates the raw body itself)
BATCH_EXAMPLE = {
    "instance": "edge-1",
    "samples": [
        {
            "model": "lstm",
            "model_version": 1,
            "ts": 1767225600.0,
            "latency_ms": 2.1,
            "energy_j": 0.004,
            "energy_source": "estimate",
            "prediction": 101.5,
            "target": 99.0,
        }
    ],
}
