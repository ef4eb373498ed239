"""Telemetry: one sample per inference (or per batch) reported by a managed system."""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class TelemetrySample(BaseModel):
    """What a probe reports about one inference.

    ``prediction``/``target`` give regression quality (R², MAE) over a window once ground truth
    arrives; ``metrics`` holds any other per-sample number (``confidence``, ``correct``,
    ``error``...). ``trace_id`` follows one request across the stages of a pipeline (a W3C
    trace id, 32 hex digits, when the caller has one). ``drift_value`` is the value the drift
    detectors watch (an input feature or the observed target), and ``input_summary`` an
    optional vector summary of the input.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    app: str = Field(min_length=1)
    stage: str | None = Field(default=None, description="filled in from the service if absent")
    service: str = "default"
    instance: str = "default"
    trace_id: str | None = Field(
        default=None, description="the request this sample served, the same across stages"
    )
    model: str = Field(min_length=1)
    model_version: int | None = Field(default=None, ge=1)
    ts: float = Field(description="event time, seconds since the epoch")
    latency_ms: float | None = Field(default=None, ge=0)
    energy_j: float | None = Field(default=None, ge=0)
    energy_source: str | None = None
    prediction: float | None = None
    target: float | None = None
    drift_value: float | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    input_summary: list[float] | None = None

    @classmethod
    def trusted(cls, fields: dict[str, Any]) -> TelemetrySample:
        """A sample from fields that were validated already (the server validates a whole
        batch from JSON at once; the replay lab builds its own). ``fields`` must name every
        field. It skips pydantic's checks the way ``model_construct`` does, about four
        times cheaper, which matters on the ingestion hot path.
        """
        sample = cls.__new__(cls)
        object.__setattr__(sample, "__dict__", fields)
        object.__setattr__(sample, "__pydantic_fields_set__", set())
        object.__setattr__(sample, "__pydantic_extra__", None)
        object.__setattr__(sample, "__pydantic_private__", None)
        return sample

    @field_validator("ts", "prediction", "target", "drift_value", "latency_ms", "energy_j")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value

    @field_validator("metrics")
    @classmethod
    def _finite_metrics(cls, value: dict[str, float]) -> dict[str, float]:
        bad = [name for name, number in value.items() if not math.isfinite(number)]
        if bad:
            raise ValueError(f"metrics {', '.join(sorted(bad))} must be finite numbers")
        return value
