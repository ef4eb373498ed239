"""QoA4ML's `MLContract` (contract schema v0.3: ``stakeholders``, ``resources``, ``quality``)
as a Harmonia `Contract`.

An MLContract does not name its application, so the caller gives it. Each `MetricConstraint`
of ``quality.service``, ``quality.data``, ``quality.ml_specific``, ``quality.fairness`` and
``quality.cost`` becomes one end-to-end SLO named ``<constraint name>.<metric name>``:

- the metric: ``response_time`` reads ``latency_ms`` (a unit of ``s`` is converted to ms),
  ``accuracy`` in ``ml_specific`` the window's ``accuracy`` (prediction == target),
  ``availability`` and ``reliability`` the window's ``availability``; any other metric is the
  one the system reports. A unit of ``%`` divides thresholds of ``accuracy``,
  ``availability``, ``reliability`` and ``completeness`` by 100;
- the aggregate: ``AVERAGE`` → ``mean``, ``MIN`` → ``min``, ``MAX`` → ``max`` (window signals
  such as ``availability`` are already one value per window and take no aggregate); ``SUM``,
  ``COUNT``, ``OR``, ``AND`` and ``PRODUCT`` are refused;
- the operator: ``less_equal``, ``greater_equal``, ``less_than``, ``greater_than``, ``equal``,
  and ``range`` with a value ``{"min": a, "max": b}`` (or ``[a, b]``) → ``x >= a and x <= b``.

``security``, ``privacy`` and ``interpretability`` hold no metric constraint and are not
evaluated; ``stakeholders`` and ``resources`` are required and not kept. Every error names
its field path (``quality.service.0.constraint_list.1.condition.operator``).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from harmonia.core.contracts import Contract, ContractError
from harmonia.core.errors import Issue

Operator = Literal["range", "less_equal", "greater_equal", "less_than", "greater_than", "equal"]
Aggregate = Literal["MIN", "MAX", "AVERAGE", "SUM", "COUNT", "OR", "AND", "PRODUCT"]

_OPS = {
    "less_equal": "<=",
    "greater_equal": ">=",
    "less_than": "<",
    "greater_than": ">",
    "equal": "==",
}
_AGGREGATES = {"AVERAGE": "mean", "MIN": "min", "MAX": "max"}
_WINDOW_SIGNALS = {"availability": "availability", "reliability": "availability"}
_PERCENT = {"accuracy", "availability", "reliability", "completeness"}
_CONSTRAINED = ("service", "data", "ml_specific", "fairness", "cost")


class _Metric(BaseModel):
    model_config = ConfigDict(extra="forbid")

    metric_name: str
    records: list[Any] = []
    unit: str | None = None
    description: str | None = None


class _Condition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    operator: Operator
    value: dict[str, float] | list[float] | float


class _MetricConstraint(BaseModel):
    model_config = ConfigDict(extra="forbid")

    metrics: _Metric
    condition: _Condition
    aggregate_function: Aggregate


class _Constraint(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    constraint_list: list[_MetricConstraint]


class _Quality(BaseModel):
    model_config = ConfigDict(extra="forbid")

    service: list[_Constraint] = []
    data: list[_Constraint] = []
    ml_specific: list[_Constraint] = []
    fairness: list[_Constraint] = []
    cost: list[_Constraint] = []
    security: list[dict[str, Any]] = []
    privacy: list[dict[str, Any]] = []
    interpretability: list[dict[str, Any]] = []


class _MLContract(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stakeholders: list[dict[str, Any]]
    resources: dict[str, Any]
    quality: _Quality


def load_qoa4ml_contract(text: str, *, application: str, source: str | None = None) -> Contract:
    """Parse MLContract JSON and convert it for ``application``."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ContractError([Issue("", f"not JSON: {error}")], source) from None
    return from_qoa4ml_contract(data, application=application, source=source)


def from_qoa4ml_contract(data: Any, *, application: str, source: str | None = None) -> Contract:
    """Convert a parsed MLContract; `ContractError` names any bad field."""
    try:
        contract = _MLContract.model_validate(data)
    except ValidationError as error:
        raise ContractError.from_validation(error, source=source) from None
    slos: list[dict[str, Any]] = []
    issues: list[Issue] = []
    used: set[str] = set()
    for group in _CONSTRAINED:
        for c, constraint in enumerate(getattr(contract.quality, group)):
            for m, item in enumerate(constraint.constraint_list):
                path = f"quality.{group}.{c}.constraint_list.{m}"
                try:
                    condition = _condition(group, item, path)
                except _Refused as refused:
                    issues.append(refused.issue)
                    continue
                name = f"{constraint.name}.{item.metrics.metric_name}"
                while name in used:
                    name += "_"
                used.add(name)
                slos.append({"name": name, "scope": "end_to_end", "condition": condition})
    if issues:
        raise ContractError(issues, source)
    if not slos:
        raise ContractError([Issue("quality", "no metric constraint to convert")], source)
    try:
        return Contract.model_validate({"application": application, "slos": slos})
    except ValidationError as error:
        raise ContractError.from_validation(error, source=source) from None


class _Refused(Exception):
    def __init__(self, path: str, reason: str) -> None:
        self.issue = Issue(path, reason)


def _condition(group: str, item: _MetricConstraint, path: str) -> str:
    metric = item.metrics.metric_name
    scale = 1.0
    if metric in _PERCENT and (item.metrics.unit or "").strip() in {"%", "percent", "percentage"}:
        scale = 0.01
    if metric == "response_time" and (item.metrics.unit or "ms").strip() in {"s", "sec", "seconds"}:
        scale = 1000.0
    if metric in _WINDOW_SIGNALS:
        signal = _WINDOW_SIGNALS[metric]
    elif metric == "accuracy" and group == "ml_specific":
        signal = "accuracy"
    else:
        aggregate = _AGGREGATES.get(item.aggregate_function)
        if aggregate is None:
            raise _Refused(
                f"{path}.aggregate_function",
                f"{item.aggregate_function} is not supported; use AVERAGE, MIN or MAX",
            )
        name = "latency_ms" if metric == "response_time" else metric
        signal = f"{aggregate}({name})"
    value = item.condition.value
    if item.condition.operator == "range":
        low, high = _bounds(value, f"{path}.condition.value")
        return f"{signal} >= {low * scale:g} and {signal} <= {high * scale:g}"
    if not isinstance(value, int | float):
        raise _Refused(f"{path}.condition.value", "a number is expected for this operator")
    return f"{signal} {_OPS[item.condition.operator]} {value * scale:g}"


def _bounds(value: Any, path: str) -> tuple[float, float]:
    if isinstance(value, dict) and {"min", "max"} <= set(value):
        return float(value["min"]), float(value["max"])
    if isinstance(value, list) and len(value) == 2:
        return float(value[0]), float(value[1])
    raise _Refused(path, 'a range is {"min": a, "max": b} or [a, b]')
