"""ROHE's `ServiceContract` (YAML, under a ``contract:`` key) as a Harmonia `Contract`.

The document is read against a description of the format written here (unknown keys are
refused, so a typo is not silently ignored), then converted; every error names its field
path (``contract.quality_slo.builtin_metrics.accuracy.operator``).

Mapping: ``pipeline_id`` → ``application``, ``contract_id`` → ``name``; every SLO is end to
end (a ROHE contract binds the pipeline).

- ``performance_slo.response_time_p50_ms`` / ``_p99_ms`` → ``p50(latency_ms) <= v`` /
  ``p99(latency_ms) <= v``; ``throughput_rps`` → ``throughput >= v``;
  ``availability_percent`` → ``availability >= v / 100``;
- ``quality_slo.builtin_metrics.<m>`` → ``accuracy OP v`` for ``accuracy`` (prediction ==
  target), otherwise ``mean(<m>) OP v`` over the metric the system reports; its ``window``
  and ``action_on_violation`` become the SLO's window and ``then`` (``reject`` is critical);
- ``quality_slo.cdm_thresholds.<m>`` → ``mean(<m>) OP v``: the custom metric as the system
  reports it. ``cdm_definitions`` (how ROHE computes those metrics) are accepted and not
  evaluated.

``effective_from`` / ``effective_until`` are checked as timestamps and not kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from harmonia.core.contracts import Contract, ContractError

Operator = Literal["<", "<=", ">", ">=", "==", "!="]
Action = Literal["alert", "degrade", "reroute", "reject"]


class _Threshold(BaseModel):
    model_config = ConfigDict(extra="forbid")

    operator: Operator
    value: float
    window: str | None = None
    action_on_violation: Action = "alert"


class _Performance(BaseModel):
    model_config = ConfigDict(extra="forbid")

    response_time_p50_ms: float | None = None
    response_time_p99_ms: float | None = None
    throughput_rps: float | None = None
    availability_percent: float | None = None


class _Quality(BaseModel):
    model_config = ConfigDict(extra="forbid")

    builtin_metrics: dict[str, _Threshold] | None = None
    cdm_thresholds: dict[str, _Threshold] | None = None


class _ServiceContract(BaseModel):
    model_config = ConfigDict(extra="forbid")

    contract_id: str
    tenant_id: str
    pipeline_id: str
    effective_from: datetime
    effective_until: datetime | None = None
    performance_slo: _Performance
    quality_slo: _Quality


class _Document(BaseModel):
    model_config = ConfigDict(extra="forbid")

    contract: _ServiceContract
    cdm_definitions: dict[str, Any] | None = None


def load_rohe_contract(text: str, source: str | None = None) -> Contract:
    """Parse ROHE contract YAML and convert it; `ContractError` names any bad field."""
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ContractError([_issue("", f"not YAML: {error}")], source) from None
    return from_rohe_contract(data, source)


def from_rohe_contract(data: Any, source: str | None = None) -> Contract:
    """Convert a parsed ROHE document (``{"contract": {...}, "cdm_definitions": {...}}``, or
    the bare contract mapping)."""
    if isinstance(data, Mapping) and "contract" not in data and "contract_id" in data:
        data = {"contract": data}
    try:
        document = _Document.model_validate(data)
    except ValidationError as error:
        raise ContractError.from_validation(error, source=source) from None
    rohe = document.contract
    slos: list[dict[str, Any]] = []
    performance = rohe.performance_slo
    if performance.response_time_p50_ms is not None:
        slos.append(
            _slo("response_time_p50", f"p50(latency_ms) <= {performance.response_time_p50_ms}")
        )
    if performance.response_time_p99_ms is not None:
        slos.append(
            _slo("response_time_p99", f"p99(latency_ms) <= {performance.response_time_p99_ms}")
        )
    if performance.throughput_rps is not None:
        slos.append(_slo("throughput", f"throughput >= {performance.throughput_rps}"))
    if performance.availability_percent is not None:
        slos.append(
            _slo("availability", f"availability >= {performance.availability_percent / 100:g}")
        )
    paths: dict[int, str] = {}
    for group in ("builtin_metrics", "cdm_thresholds"):
        for metric, threshold in (getattr(rohe.quality_slo, group) or {}).items():
            signal = (
                "accuracy"
                if group == "builtin_metrics" and metric == "accuracy"
                else f"mean({metric})"
            )
            slo = _slo(metric, f"{signal} {threshold.operator} {threshold.value}")
            slo["then"] = threshold.action_on_violation
            slo["severity"] = "critical" if threshold.action_on_violation == "reject" else "warning"
            if threshold.window is not None:
                slo["window"] = threshold.window
            paths[len(slos)] = f"contract.quality_slo.{group}.{metric}"
            slos.append(slo)
    converted = {"name": rohe.contract_id, "application": rohe.pipeline_id, "slos": slos}
    try:
        return Contract.model_validate(converted)
    except ValidationError as error:
        raise _renamed(error, paths, source) from None


def _slo(name: str, condition: str) -> dict[str, Any]:
    return {"name": name, "scope": "end_to_end", "condition": condition}


def _issue(path: str, reason: str) -> Any:
    from harmonia.core.errors import Issue

    return Issue(path, reason)


def _renamed(error: ValidationError, paths: Mapping[int, str], source: str | None) -> ContractError:
    """Errors of the converted contract, named by the ROHE field they came from."""
    issues = []
    for item in error.errors():
        loc = list(item["loc"])
        if loc[:1] == ["name"]:
            path = "contract.contract_id"
        elif loc[:1] == ["application"]:
            path = "contract.pipeline_id"
        elif loc[:1] == ["slos"] and len(loc) > 1 and isinstance(loc[1], int):
            field = {"window": "window", "name": "(its name)"}.get(
                str(loc[2]) if len(loc) > 2 else "", ""
            )
            base = paths.get(loc[1], "contract.performance_slo")
            path = f"{base}.{field}" if field else base
        else:
            path = ".".join(map(str, loc))
        issues.append(_issue(path, str(item["msg"]).removeprefix("Value error, ")))
    return ContractError(issues, source)
