"""Turn captured samples into the wire format, off the caller's thread.

The hot path stores a bare tuple; this module does the conversion and the checks the server
would otherwise do, so that one bad sample (a NaN timestamp, a negative latency) is dropped
here instead of getting the whole batch rejected there. Numbers are coerced with ``float``
so numpy scalars and booleans (``correct=True``) travel as plain JSON numbers.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from harmonia.sdk._buffer import Item

MAX_NAME = 128
"""Longest model or service name the server stores."""

MAX_SOURCE = 32
"""Longest ``energy_source`` label the server stores."""

TRACE_ID = re.compile(r"[0-9A-Za-z_.:-]{1,64}")
"""What a trace id may hold (a W3C trace id is 32 lowercase hex digits)."""


@dataclass(frozen=True)
class Batch:
    """One telemetry batch in wire form, as the sender retries, spools and sends it.

    ``key`` is its idempotency key, the same on every attempt (from memory or from the
    spool), so the server stores the batch once however often its reply is lost. ``seq``
    orders batches by when they were formed, so spooled ones are sent oldest first.
    """

    seq: int
    app: str
    instance: str
    key: str
    samples: list[dict[str, Any]]


def to_columns(samples: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """The columnar form of wire samples (``{"ts": [...], "model": [...], ...}``): a field
    some samples leave out is null in theirs (``metrics``: empty), one no sample has is
    left out, and so are ``metrics`` when no sample has any. The server validates and
    stores columns several times faster than rows, and the body is about half the size.

    >>> to_columns([{"model": "a", "ts": 1.0, "metrics": {}}, {"model": "a", "ts": 2.0,
    ...     "metrics": {"x": 1.0}, "trace_id": "t"}])
    {'model': ['a', 'a'], 'ts': [1.0, 2.0], 'metrics': [{}, {'x': 1.0}], 'trace_id': [None, 't']}
    """
    names: dict[str, None] = {}
    for sample in samples:
        if not names.keys() >= sample.keys():  # most samples name what the first did
            names.update(dict.fromkeys(sample))
    columns = {name: [sample.get(name) for sample in samples] for name in names}
    if "metrics" in columns:
        metrics = columns["metrics"] = [m or {} for m in columns["metrics"]]
        if not any(metrics):
            del columns["metrics"]
    return columns


def to_wire(item: Item, service: str, stage: str | None = None) -> dict[str, Any]:
    """The wire dict of a captured sample, or a ValueError/TypeError saying why it is invalid.

    Non-finite ``prediction``/``target``/``drift_value`` become null (no value), non-finite
    metrics are left out; a missing or non-finite ``ts`` or a negative latency or energy
    makes the sample invalid.
    """
    model, version, ts, latency, energy, source, prediction, target, drift, metrics, trace = item
    if not isinstance(model, str) or not 0 < len(model) <= MAX_NAME:
        raise ValueError(f"model must be a string of 1 to {MAX_NAME} characters, got {model!r}")
    if source is not None and len(source := str(source)) > MAX_SOURCE:
        raise ValueError(f"energy_source must be at most {MAX_SOURCE} characters, got {source!r}")
    if version is not None:
        version = int(version)
        if version < 1:
            raise ValueError(f"model version must be >= 1, got {version}")
    ts = float(ts)
    if not math.isfinite(ts):
        raise ValueError(f"ts must be a finite number, got {ts!r}")
    sample = {
        "service": service,
        "model": model,
        "model_version": version,
        "ts": ts,
        "latency_ms": _non_negative("latency_ms", latency),
        "energy_j": _non_negative("energy_j", energy),
        "energy_source": source,
        "prediction": _finite_or_none(prediction),
        "target": _finite_or_none(target),
        "drift_value": _finite_or_none(drift),
        "metrics": _metrics(metrics),
    }
    # Only when set: most samples of a one-stage app carry neither, and bytes are the cost.
    if stage is not None:
        sample["stage"] = stage
    if trace is not None:
        sample["trace_id"] = check_trace_id(trace)
    return sample


def check_trace_id(value: Any) -> str:
    """A trace id as the server takes it: 1-64 characters of ``[0-9A-Za-z_.:-]``.

    >>> check_trace_id("4bf92f3577b34da6a3ce929d0e0e4736")
    '4bf92f3577b34da6a3ce929d0e0e4736'
    """
    if not isinstance(value, str) or not TRACE_ID.fullmatch(value):
        raise ValueError(f"trace_id must be 1-64 of [0-9A-Za-z_.:-], got {value!r}")
    return value


def _finite_or_none(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _non_negative(name: str, value: Any) -> float | None:
    number = _finite_or_none(value)
    if number is not None and number < 0:
        raise ValueError(f"{name} must be >= 0, got {number}")
    return number


def _metrics(metrics: Any) -> dict[str, float]:
    if not metrics:
        return {}
    result: dict[str, float] = {}
    for name, value in dict(metrics).items():
        number = _finite_or_none(value)
        if number is not None:
            result[str(name)] = number
    return result
