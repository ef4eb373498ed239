"""Signals of a pipeline over a span of telemetry: per service, per stage (over its services
and instances) and end to end (over traces, so one request is followed across stages).

A sample's ``ts`` is when its inference ended (the sdk stamps it on exit), so it started
``latency_ms`` earlier; a trace's end-to-end latency runs from its first start to its last end,
and its energy is the sum over every stage it went through (what HX-MLOps calls energy per
request, split per stage).

>>> app = Application.model_validate({"name": "p", "stages": [
...     {"name": "a", "services": [{"name": "s1", "models": ["m"]}]},
...     {"name": "b", "after": ["a"], "services": [{"name": "s2", "models": ["m"]}]}]})
>>> rows = [
...     {"service": "s1", "instance": "i", "model": "m", "ts": 10.010, "latency_ms": 10.0,
...      "energy_j": 1.0, "trace_id": "t1", "metrics": {}},
...     {"service": "s2", "instance": "i", "model": "m", "ts": 10.030, "latency_ms": 5.0,
...      "energy_j": 2.0, "trace_id": "t1", "metrics": {}},
... ]
>>> summary = summarize_pipeline(app, rows)
>>> summary.stages["b"]["count"], summary.end_to_end["traces"], summary.end_to_end["complete"]
(1.0, 1.0, 1.0)
>>> round(summary.end_to_end["p50(latency_ms)"], 3), summary.end_to_end["energy_j"]
(30.0, 3.0)
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from harmonia.core.application import Application

_PERCENTILES = (50.0, 95.0, 99.0)
Signals = dict[str, float]


@dataclass(frozen=True)
class PipelineSummary:
    """Signals keyed like a window's (``count``, ``p95(latency_ms)``, ``energy_j`` — the mean
    per inference —, ``total_energy_j``, ``accuracy``, ``mean(<metric>)``), per service and per
    stage; end to end: ``traces``, ``complete`` (traces that went through every stage), the
    latency percentiles of complete traces and their mean ``energy_j`` per trace."""

    start: float | None
    end: float | None
    services: dict[str, Signals] = field(default_factory=dict)
    stages: dict[str, Signals] = field(default_factory=dict)
    end_to_end: Signals = field(default_factory=dict)
    #: how many samples each service's instances reported: {service: {instance: n}}
    instances: dict[str, dict[str, int]] = field(default_factory=dict)
    #: the share of each model in a service's samples: {service: {model: share}}
    models: dict[str, dict[str, float]] = field(default_factory=dict)


def summarize_pipeline(app: Application, rows: Iterable[Mapping[str, Any]]) -> PipelineSummary:
    """Summarise samples (dicts with the telemetry fields; ``stage`` and ``trace_id`` may be
    missing) of ``app``. Samples of a service the application does not declare are ignored."""
    stage_of = {service.name: stage.name for stage in app.stages for service in stage.services}
    by_service: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    traces: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    start, end = math.inf, -math.inf
    for row in rows:
        service = row.get("service")
        if service not in stage_of:
            continue
        by_service[service].append(row)
        start, end = min(start, row["ts"]), max(end, row["ts"])
        if row.get("trace_id"):
            traces[row["trace_id"]].append(row)

    services = {name: group_signals(found) for name, found in by_service.items()}
    stages = {}
    for stage in app.stages:
        found = [row for s in stage.services for row in by_service.get(s.name, [])]
        if found:
            stages[stage.name] = group_signals(found)
    return PipelineSummary(
        start=None if math.isinf(start) else start,
        end=None if math.isinf(end) else end,
        services=services,
        stages=stages,
        end_to_end=trace_signals(traces.values(), stage_of, len(app.stages)),
        instances={
            name: dict(Counter(row.get("instance", "default") for row in found))
            for name, found in by_service.items()
        },
        models={
            name: {m: n / len(found) for m, n in Counter(row["model"] for row in found).items()}
            for name, found in by_service.items()
        },
    )


def group_signals(rows: Sequence[Mapping[str, Any]]) -> Signals:
    """Latency percentiles, energy and quality over a group of samples."""
    signals: Signals = {"count": float(len(rows))}
    latencies = _values(rows, "latency_ms")
    if latencies.size:
        signals["mean(latency_ms)"] = float(latencies.mean())
        signals.update(_percentiles(latencies, "latency_ms"))
    energy = _values(rows, "energy_j")
    if energy.size:
        signals["energy_j"] = float(energy.mean())
        signals["total_energy_j"] = float(energy.sum())
    labelled = [
        (row["prediction"], row["target"])
        for row in rows
        if row.get("prediction") is not None and row.get("target") is not None
    ]
    if labelled:
        signals["accuracy"] = sum(p == t for p, t in labelled) / len(labelled)
    names = sorted({name for row in rows for name in (row.get("metrics") or {})})
    for name in names:
        values = [row["metrics"][name] for row in rows if name in (row.get("metrics") or {})]
        signals[f"mean({name})"] = float(np.mean(values))
    return signals


def trace_signals(
    traces: Iterable[Sequence[Mapping[str, Any]]], stage_of: Mapping[str, str], stages: int
) -> Signals:
    """End to end over traces: latency from a trace's first start to its last end, energy
    summed over its samples; percentiles over the traces that reached every stage."""
    count = complete = 0
    latencies: list[float] = []
    energies: list[float] = []
    for trace in traces:
        count += 1
        if len({stage_of[row["service"]] for row in trace}) < stages:
            continue
        complete += 1
        first = min(row["ts"] - (row.get("latency_ms") or 0.0) / 1000.0 for row in trace)
        last = max(row["ts"] for row in trace)
        latencies.append((last - first) * 1000.0)
        known = [row["energy_j"] for row in trace if row.get("energy_j") is not None]
        if known:
            energies.append(float(sum(known)))
    signals: Signals = {"traces": float(count), "complete": float(complete)}
    if latencies:
        array = np.asarray(latencies)
        signals["mean(latency_ms)"] = float(array.mean())
        signals.update(_percentiles(array, "latency_ms"))
    if energies:
        signals["energy_j"] = float(np.mean(energies))
    return signals


def _values(rows: Sequence[Mapping[str, Any]], name: str) -> np.ndarray:
    return np.asarray([row[name] for row in rows if row.get(name) is not None], dtype=float)


def _percentiles(values: np.ndarray, name: str) -> Signals:
    cuts = np.percentile(values, _PERCENTILES).tolist()
    return {f"p{int(q)}({name})": v for q, v in zip(_PERCENTILES, cuts, strict=True)}


JOULES_PER_KWH = 3.6e6
#: grid carbon intensity where nothing better is known: roughly the world's average
#: electricity (IEA, about 475 gCO2e/kWh)
DEFAULT_CARBON_G_PER_KWH = 475.0
EnergyGroup = Literal["stage", "service", "instance"]


@dataclass(frozen=True)
class EnergyBreakdown:
    """Where a pipeline's energy goes: per stage, service or instance, the joules in all,
    per request and as a share of the whole, and the gCO2e they stand for.

    ``requests`` counts the distinct trace ids, plus the untraced samples of the first stages
    (each of those is a request of its own): per-request figures divide by it, so a stage's
    joules per request add up, over the stages, to the pipeline's.
    """

    by: EnergyGroup
    requests: int
    total_j: float
    total_g_co2e: float
    groups: dict[str, dict[str, float]]


def energy_breakdown(
    app: Application,
    rows: Iterable[Mapping[str, Any]],
    by: EnergyGroup = "stage",
    *,
    carbon_g_per_kwh: float,
    carbon_of_instance: Mapping[str, float] | None = None,
) -> EnergyBreakdown:
    """The energy of ``rows`` grouped ``by`` stage, service or instance. Carbon comes from
    the intensity (g/kWh) of each sample's instance when ``carbon_of_instance`` knows it
    (its node's), else from ``carbon_g_per_kwh``.

    >>> app = Application.single("a", ["m"])
    >>> rows = [{"service": "default", "instance": "i", "ts": 1.0, "energy_j": 1.8e6}] * 2
    >>> energy = energy_breakdown(app, rows, carbon_g_per_kwh=100.0)
    >>> energy.requests, energy.groups["main"]["j_per_request"], energy.total_g_co2e
    (2, 1800000.0, 100.0)
    """
    stage_of = {service.name: stage.name for stage in app.stages for service in stage.services}
    first = {stage.name for stage in app.stages if not stage.after}
    intensity = carbon_of_instance or {}
    joules: dict[str, float] = defaultdict(float)
    grams: dict[str, float] = defaultdict(float)
    samples: dict[str, int] = defaultdict(int)
    traces: set[str] = set()
    untraced = 0
    for row in rows:
        stage = stage_of.get(row.get("service", ""))
        if stage is None:
            continue
        if row.get("trace_id"):
            traces.add(row["trace_id"])
        elif stage in first:
            untraced += 1
        key = stage if by == "stage" else row["service"] if by == "service" else row["instance"]
        samples[key] += 1
        spent = row.get("energy_j")
        if spent is None:
            continue
        joules[key] += spent
        grams[key] += (
            spent / JOULES_PER_KWH * intensity.get(row.get("instance", ""), carbon_g_per_kwh)
        )
    requests = len(traces) + untraced
    total = sum(joules.values())
    per = max(requests, 1)
    groups = {
        key: {
            "samples": float(samples[key]),
            "total_j": joules[key],
            "j_per_request": joules[key] / per,
            "share": joules[key] / total if total > 0 else math.nan,
            "g_co2e": grams[key],
            "g_co2e_per_request": grams[key] / per,
        }
        for key in samples
    }
    return EnergyBreakdown(by, requests, total, sum(grams.values()), groups)
