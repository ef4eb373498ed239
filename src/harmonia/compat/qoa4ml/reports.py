"""QoA4ML's reports as Harmonia telemetry: each report becomes samples of the application's
stages, services and instances, grouped by instance (a telemetry batch names one).

The report kinds (QoA4ML 0.3.x, read from their JSON, no qoa4ml import):

- ``MLReport`` (``GeneralMlInferenceReport``): ``service`` and ``data`` quality per stage, per
  metric, per instance id; ``ml_inference`` per instance id (its metrics and prediction);
- ``RoheReport`` (ensembles): the same under ``inference_report`` with the inference graph
  ``ml_specific`` (``end_point`` and ``linked_list``), and ``execution_graph`` naming each
  instance's stage and functionality;
- resource reports: system (``metadata.node_name``), process (``metadata.pid``) — each
  ``cpu``/``mem``/``gpu`` with a ``usage`` — and Docker (``container_reports``).

How a report maps: a sample per instance the report speaks of, at the report's timestamp;
``response_time`` gives ``latency_ms``; the other service-quality metrics keep their name,
data-quality metrics become ``data.<name>``, inference metrics ``ml.<name>``, resource usage
``cpu.<key>``, ``mem.<key>``, ``gpu.<key>`` (containers: ``container.<key>``). A metric with
several records gives their mean; records that are dicts give one metric per numeric key
(``<name>.<key>``). A numeric prediction is the sample's ``prediction``; a dict prediction's
numeric values become ``prediction.<key>`` metrics. Every sample of one report shares its
``trace_id`` (the inference id of the graph's end point, else of the reporting instance).
The stage is the one the report names, the service the stage's service whose name (or one of
whose models) is the client's ``functionality``, else the stage's only service; the model is
``functionality`` where the service serves it, else the service's first model.
"""

from __future__ import annotations

import functools
import re
import sys
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from harmonia.core.application import NAME_PATTERN, Application, Service, Stage

_NAME = re.compile(NAME_PATTERN)
_TRACE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_FLOAT_MAX = sys.float_info.max
MAX_METRICS = 100


class ReportInvalid(ValueError):
    """A report that cannot be mapped onto the application (its reason says why)."""


@dataclass
class Mapped:
    """One report's samples, by instance (``instance -> samples``)."""

    batches: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def add(self, instance: str, sample: dict[str, Any]) -> None:
        self.batches.setdefault(instance, []).append(sample)

    @property
    def count(self) -> int:
        return sum(len(samples) for samples in self.batches.values())


def kind_of(report: dict[str, Any]) -> str:
    """``ml``, ``rohe``, ``system``, ``process`` or ``docker``; `ReportInvalid` otherwise."""
    if "inference_report" in report or "execution_graph" in report:
        return "rohe"
    if "container_reports" in report:
        return "docker"
    if "cpu" in report and "mem" in report:
        metadata = report.get("metadata") or {}
        return "process" if isinstance(metadata, dict) and "pid" in metadata else "system"
    if "service" in report or "data" in report or "ml_inference" in report:
        return "ml"
    raise ReportInvalid("not a QoA4ML report (no service, data, ml_inference, cpu or graph)")


def map_report(structure: Application, report: Any, now: float) -> Mapped:
    """The samples of one report for the application ``structure``; `ReportInvalid` if it
    is not a QoA4ML report, has a part of the wrong shape (a list where an object belongs)
    or names a stage the application does not have."""
    if not isinstance(report, dict):
        raise ReportInvalid("a report is a JSON object")
    kind = kind_of(report)
    try:
        if kind in ("ml", "rohe"):
            return _map_quality(structure, report, kind, now)
        return _map_resources(structure, report, kind, now)
    except (AttributeError, TypeError) as error:  # the mapping reads objects as dicts
        raise ReportInvalid(f"a part of this {kind} report has the wrong shape: {error}") from None


# -- quality reports -----------------------------------------------------------------------


def _client(report: dict[str, Any]) -> dict[str, Any]:
    metadata = report.get("metadata")
    if not isinstance(metadata, dict):
        return {}
    client = metadata.get("client_config") or metadata.get("client_info") or {}
    return client if isinstance(client, dict) else {}


def _timestamp(report: dict[str, Any], now: float) -> float:
    metadata = report.get("metadata")
    for where in (metadata if isinstance(metadata, dict) else {}, report):
        ts = where.get("timestamp")
        if _number(ts):
            return float(ts)
    return now


def _map_quality(structure: Application, report: dict[str, Any], kind: str, now: float) -> Mapped:
    body = (report.get("inference_report") or {}) if kind == "rohe" else report
    if not isinstance(body, dict):
        raise ReportInvalid("inference_report must be an object")
    client = _client(report)
    ts = _timestamp(report, now)
    #: instance id -> {"stage", "functionality", "metrics", "prediction", "inference_id"}
    seen: dict[str, dict[str, Any]] = {}

    def entry(instance: Any) -> dict[str, Any]:
        key = str(instance)
        item = seen.get(key)
        if item is None:
            item = seen[key] = {"metrics": {}}
        return item

    for section, prefix in (("service", ""), ("data", "data.")):
        stages = body.get(section) or {}
        if not isinstance(stages, dict):
            raise ReportInvalid(f"{section} must map stages to their metrics")
        for stage_name, stage_report in stages.items():
            metrics = (stage_report or {}).get("metrics") or {}
            for metric_name, per_instance in metrics.items():
                for instance, metric in (per_instance or {}).items():
                    item = entry(instance)
                    item.setdefault("stage", stage_name)
                    records = (metric or {}).get("records") or []
                    if section == "service" and metric_name == "response_time":
                        latency = _latency_ms(records)
                        if latency is not None:
                            item["latency_ms"] = latency
                        continue
                    _put(item["metrics"], prefix + str(metric_name), records)

    inferences: list[dict[str, Any]] = []
    if kind == "ml":
        inferences = [i for i in (body.get("ml_inference") or {}).values() if isinstance(i, dict)]
    else:
        graph = body.get("ml_specific") or {}
        for linked in (graph.get("linked_list") or {}).values():
            inferences.append(linked.get("instance") or {})
            inferences.extend(p for p in linked.get("previous") or [] if isinstance(p, dict))
        if isinstance(graph.get("end_point"), dict):
            inferences.append(graph["end_point"])
    for inference in inferences:
        instance = inference.get("instance_id")
        if instance is None:
            continue
        item = entry(instance)
        _first(item, "functionality", inference.get("functionality"))
        _first(item, "inference_id", inference.get("inference_id"))
        for metric in inference.get("metrics") or []:
            _put(item["metrics"], f"ml.{metric.get('metric_name')}", metric.get("records") or [])
        _prediction(item, inference.get("prediction"))

    if kind == "rohe":  # the execution graph names each instance's stage and functionality
        graph = report.get("execution_graph") or {}
        nodes = [
            (linked or {}).get("instance") for linked in (graph.get("linked_list") or {}).values()
        ]
        for node in [*nodes, graph.get("end_point")]:
            if isinstance(node, dict) and node.get("id") is not None and str(node["id"]) in seen:
                item = seen[str(node["id"])]
                _first(item, "stage", node.get("stage"))
                _first(item, "functionality", node.get("functionality"))

    own = str(client.get("instance_id") or "")
    if not seen and own:  # a report with nothing observed yet still says the instance lives
        entry(own)
    trace = _trace(report, kind, seen.get(own))
    mapped = Mapped()
    for instance, item in seen.items():
        if instance == own:
            _first(item, "stage", client.get("stage_id"))
            _first(item, "functionality", client.get("functionality"))
        stage, service = resolve(structure, item.get("stage"), item.get("functionality"))
        sample: dict[str, Any] = {
            "stage": stage.name,
            "service": service.name,
            "model": model_of(service, item.get("functionality")),
            "ts": ts,
            "metrics": _at_most(item["metrics"]),
        }
        for key in ("latency_ms", "prediction"):
            if key in item:
                sample[key] = item[key]
        if trace is not None:
            sample["trace_id"] = trace
        mapped.add(_instance_name(instance), sample)
    return mapped


def _first(item: dict[str, Any], key: str, value: Any) -> None:
    """Keep the first source that names ``key``: a report may say an instance's stage or
    functionality in several places, some of them empty."""
    if value is not None and value != "" and item.get(key) is None:
        item[key] = value


def _at_most(metrics: dict[str, float]) -> dict[str, float]:
    """The first `MAX_METRICS` metrics (a sample takes no more)."""
    return metrics if len(metrics) <= MAX_METRICS else dict(list(metrics.items())[:MAX_METRICS])


def _trace(report: dict[str, Any], kind: str, own: dict[str, Any] | None) -> str | None:
    candidate: Any = None
    if kind == "rohe":
        end = ((report.get("inference_report") or {}).get("ml_specific") or {}).get("end_point")
        if isinstance(end, dict):
            candidate = end.get("inference_id")
    if candidate is None and own is not None:
        candidate = own.get("inference_id")
    text = None if candidate is None else str(candidate)
    return text if text is not None and _TRACE.match(text) else None


def _latency_ms(records: list[Any]) -> float | None:
    values = []
    for record in records:
        if isinstance(record, dict):
            record = record.get("responseTime", record.get("response_time"))
        if _number(record) and record >= 0:
            values.append(float(record) * 1000.0)  # QoA4ML's timer measures seconds
    return sum(values) / len(values) if values else None


def _put(metrics: dict[str, float], name: str, records: list[Any]) -> None:
    """The mean of the numeric records under ``name``; dict records one per numeric key."""
    if not isinstance(records, list):
        records = [records]
    if not any(isinstance(record, dict) for record in records):  # the usual case: numbers
        values = [float(record) for record in records if _number(record)]
        if values and _valid_name(name):
            metrics[name] = sum(values) / len(values)
        return
    numbers: dict[str, list[float]] = {}
    for record in records:
        if isinstance(record, dict):
            for key, value in record.items():
                if _number(value):
                    numbers.setdefault(f"{name}.{key}", []).append(float(value))
        elif _number(record):
            numbers.setdefault(name, []).append(float(record))
    for key, values in numbers.items():
        if _valid_name(key):
            metrics[key] = sum(values) / len(values)


def _prediction(item: dict[str, Any], prediction: Any) -> None:
    if _number(prediction):
        item["prediction"] = float(prediction)
    elif isinstance(prediction, dict):
        _put(item["metrics"], "prediction", [prediction])


def _number(value: Any) -> TypeGuard[int | float]:
    """A finite JSON number, not a bool; an int too big for a float is not one (the bounds
    also refuse NaN and infinities, and compare big ints exactly)."""
    kind = type(value)
    if kind is float or kind is int or (kind is not bool and isinstance(value, int | float)):
        return bool(-_FLOAT_MAX <= value <= _FLOAT_MAX)
    return False


@functools.lru_cache(maxsize=4096)
def _valid_name(name: str) -> bool:
    """Whether ``name`` may name a metric or an instance; remembered, since the same few
    names come in every report (bounded, whatever the reports say)."""
    return _NAME.match(name) is not None


def _instance_name(instance: str) -> str:
    if not _valid_name(instance):
        raise ReportInvalid(f"instance id {instance[:64]!r} is not a valid name")
    return instance


# -- resource reports ----------------------------------------------------------------------


def _map_resources(structure: Application, report: dict[str, Any], kind: str, now: float) -> Mapped:
    metadata = report.get("metadata") or {}
    if kind == "docker":
        client = metadata if isinstance(metadata, dict) else {}
        parts = [(c, "container.") for c in report.get("container_reports") or []]
    else:
        client = (metadata.get("client_info") if isinstance(metadata, dict) else None) or {}
        parts = [(report, "")]
    stage, service = resolve(structure, client.get("stage_id") or None, client.get("functionality"))
    instance = _instance_name(str(client.get("instance_id") or "default"))
    mapped = Mapped()
    for part, prefix in parts:
        if not isinstance(part, dict):
            continue
        metrics: dict[str, float] = {}
        for resource in ("cpu", "mem", "gpu"):
            usage = (part.get(resource) or {}).get("usage")
            if isinstance(usage, dict):
                _flatten(metrics, f"{prefix}{resource}", usage)
        mapped.add(
            instance,
            {
                "stage": stage.name,
                "service": service.name,
                "model": model_of(service, client.get("functionality")),
                "ts": _timestamp(part, now),
                "metrics": _at_most(metrics),
            },
        )
    return mapped


def _flatten(metrics: dict[str, float], name: str, usage: dict[str, Any], depth: int = 0) -> None:
    for key, value in usage.items():
        if _number(value):
            if _valid_name(f"{name}.{key}"):
                metrics[f"{name}.{key}"] = float(value)
        elif isinstance(value, dict) and depth < 2:
            _flatten(metrics, f"{name}.{key}", value, depth + 1)


# -- the application's structure ------------------------------------------------------------


def resolve(
    structure: Application, stage: str | None, functionality: str | None
) -> tuple[Stage, Service]:
    """The stage and service a client's ``stage_id`` and ``functionality`` mean."""
    stages = {s.name: s for s in structure.stages}
    if stage in stages:
        found = stages[stage]
    elif len(structure.stages) == 1:
        found = structure.stages[0]
    else:
        known = ", ".join(stages)
        raise ReportInvalid(f"no stage {stage!r} in this application; its stages: {known}")
    for service in found.services:
        if service.name == functionality:
            return found, service
    for service in found.services:
        if functionality in service.models:
            return found, service
    if len(found.services) == 1:
        return found, found.services[0]
    names = ", ".join(s.name for s in found.services)
    raise ReportInvalid(
        f"stage {found.name!r} has several services ({names}): the client's functionality "
        f"{functionality!r} must name one of them or one of their models"
    )


def model_of(service: Service, functionality: str | None) -> str:
    return functionality if functionality in service.models else service.models[0]
