"""Contracts: the service-level objectives of an application, and their evaluation.

A `Contract` lists SLOs. Each SLO reads one scope of the pipeline — a ``service``, a
``stage`` (over its services and instances) or ``end_to_end`` (over traces) — and states, in
the condition grammar of `harmonia.core.conditions`, what must **hold** over its window
(the opposite of a policy boundary, which says when to act)::

    application: detect
    carbon_g_per_kwh: 400          # grid intensity for co2_g (gCO2e per request)
    window: 5 min                  # the default window of every SLO
    slos:
      - name: e2e-latency
        scope: end_to_end
        condition: p99(latency_ms) <= 300
        severity: critical
        then: reroute
      - name: classify-accuracy
        scope: stage
        target: classify
        condition: mean(correct) >= 0.8
        window: 500 samples

Signals, besides any ``AGG(metric)`` of a sample field (``latency_ms``, ``energy_j``) or of a
reported metric: ``correct`` (1 where prediction == target, per labelled sample), ``error``
(a sample's ``error`` field or metric, non-zero = failed) and the bare window signals
``count``, ``throughput`` (samples — or complete traces end to end — per second),
``availability`` (fraction without error; end to end, of traces that completed without
error), ``error_rate``, ``accuracy``, ``energy_j`` (mean per inference, per request end to
end), ``total_energy_j`` and ``co2_g`` (gCO2e per request at ``carbon_g_per_kwh``).

`evaluate` returns one `SLOResult` per SLO: ``met``, ``at_risk`` (met, but the value lies
within ``at_risk_margin`` — 10 % by default — of the threshold, relative to the threshold),
``violated`` or ``no_data``; a violation comes with an explanation and the structured
`Attribution` that traces it to a stage, a service, an instance and its node.

>>> from harmonia.core.application import Application
>>> app = Application.single("demo", ["m"])
>>> contract = Contract.model_validate({"application": "demo", "slos": [
...     {"name": "fast", "scope": "service", "target": "default",
...      "condition": "p99(latency_ms) <= 50", "window": "10 samples"}]})
>>> rows = [{"service": "default", "instance": "i1", "model": "m", "ts": float(t),
...          "latency_ms": 10.0 + 50 * (t == 9)} for t in range(10)]
>>> [result] = evaluate(contract, app, rows, nodes={"i1": "edge-1"})
>>> result.status, result.attribution[0].instance, result.attribution[0].node
('violated', 'i1', 'edge-1')
>>> Contract.model_validate({"slos": [{"name": "x", "scope": "stage",
...                          "condition": "p99(latency_ms) <= 1"}]})
Traceback (most recent call last):
...
pydantic_core._pydantic_core.ValidationError: 1 validation error for Contract
slos.0
  Value error, a stage SLO needs a target (the stage's name) ...
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic import model_validator as _model_validator

from harmonia.core.application import Application, AppName, Name
from harmonia.core.conditions import Comparison, Condition, Junction, Operand, parse_condition
from harmonia.core.errors import HarmoniaError, Issue
from harmonia.core.policy import Window

Scope = Literal["service", "stage", "end_to_end"]
Severity = Literal["info", "warning", "critical"]
Then = Literal["alert", "degrade", "reroute", "reject"]
Status = Literal["met", "at_risk", "violated", "no_data"]

#: bare signals a contract computes over a window (not means of a reported metric)
WINDOW_SIGNALS = frozenset(
    {"count", "throughput", "availability", "error_rate", "accuracy", "total_energy_j", "co2_g"}
)
#: IEA's world average grid intensity (gCO2e/kWh), the default when a contract names none
DEFAULT_CARBON_G_PER_KWH = 475.0
_J_PER_KWH = 3.6e6
#: window signals that end to end read traces (``accuracy`` reads the final stages' samples)
_TRACE_SIGNALS = WINDOW_SIGNALS - {"accuracy"}

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]


class ContractError(HarmoniaError, ValueError):
    """A contract is invalid (or does not fit its application); ``issues`` name each field."""

    def __init__(self, issues: list[Issue], source: str | None = None) -> None:
        self.issues = issues
        self.source = source
        where = f"{source}: " if source else ""
        lines = "\n".join(f"  - {issue}" for issue in issues)
        super().__init__(f"{where}invalid contract ({len(issues)} problem(s)):\n{lines}")

    @classmethod
    def from_validation(
        cls, error: ValidationError, prefix: str = "", source: str | None = None
    ) -> ContractError:
        issues = []
        for item in error.errors():
            path = ".".join(str(part) for part in (prefix, *item["loc"]) if part != "")
            issues.append(Issue(path, str(item["msg"]).removeprefix("Value error, ")))
        return cls(issues, source)


class SLO(BaseModel):
    """One objective: ``condition`` must hold over ``window`` of ``scope`` / ``target``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    scope: Scope = "end_to_end"
    #: the service or stage the SLO reads; none end to end
    target: Name | None = None
    condition: str = Field(max_length=1000)
    #: None: the contract's window
    window: Window | None = None
    severity: Severity = "warning"
    then: Then | None = None

    @field_validator("condition")
    @classmethod
    def _parses(cls, value: str) -> str:
        return str(parse_condition(value))

    @_model_validator(mode="after")
    def _target_fits_scope(self) -> SLO:
        if self.scope == "end_to_end" and self.target is not None:
            raise ValueError("an end_to_end SLO has no target")
        if self.scope != "end_to_end" and self.target is None:
            raise ValueError(f"a {self.scope} SLO needs a target (the {self.scope}'s name)")
        return self

    @property
    def parsed(self) -> Condition:
        return _parsed(self.condition)


class Contract(BaseModel):
    """An application's SLOs. ``window`` is the default window of every SLO."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name | None = None
    #: the application it binds; checked against the application evaluated when given
    application: AppName | None = None
    window: Window = Field(default_factory=lambda: Window(seconds=300.0))
    carbon_g_per_kwh: float = Field(default=DEFAULT_CARBON_G_PER_KWH, ge=0, le=5000)
    at_risk_margin: float = Field(default=0.1, ge=0, lt=1)
    #: where ``alert`` actions are posted (a webhook); none: they are only recorded
    alert_url: str | None = Field(default=None, max_length=512)
    slos: list[SLO] = Field(min_length=1, max_length=1000)

    @field_validator("slos")
    @classmethod
    def _distinct(cls, slos: list[SLO]) -> list[SLO]:
        counts = Counter(slo.name for slo in slos)
        repeated = sorted(name for name, n in counts.items() if n > 1)
        if repeated:
            raise ValueError(f"SLO names must be distinct; repeated: {', '.join(repeated)}")
        return slos

    def issues_with(self, app: Application) -> list[Issue]:
        """What does not fit ``app``: another application's name, unknown targets."""
        issues = []
        if self.application is not None and self.application != app.name:
            issues.append(Issue("application", f"the contract is for {self.application!r}"))
        stages = {stage.name for stage in app.stages}
        services = {service.name for service in app.services}
        for index, slo in enumerate(self.slos):
            known = stages if slo.scope == "stage" else services
            if slo.scope != "end_to_end" and slo.target not in known:
                issues.append(
                    Issue(
                        f"slos.{index}.target",
                        f"{app.name} has no {slo.scope} {slo.target!r}; "
                        f"its {slo.scope}s: {', '.join(sorted(known))}",
                    )
                )
        return issues


def parse_contract(data: Mapping[str, Any] | Contract, source: str | None = None) -> Contract:
    """Validate a contract document, or raise `ContractError` naming every bad field."""
    if isinstance(data, Contract):
        return data
    try:
        return Contract.model_validate(data)
    except ValidationError as error:
        raise ContractError.from_validation(error, source=source) from None


@functools.lru_cache(maxsize=4096)
def _parsed(text: str) -> Condition:
    return parse_condition(text)


# -- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One comparison of an SLO's condition, with the value it read."""

    signal: str
    op: str
    threshold: float
    value: float
    status: Status


@dataclass(frozen=True)
class Attribution:
    """Where a violation comes from. ``share``: the stage's share of the excess (end to end)
    or the instance's share of the violating samples; ``value``: the instance's signal."""

    stage: str
    service: str | None
    instance: str | None
    node: str | None
    share: float | None
    signal: str
    value: float | None


@dataclass(frozen=True)
class SLOResult:
    slo: str
    scope: Scope
    target: str | None
    condition: str
    status: Status
    severity: Severity
    then: Then | None
    window: str
    #: samples (traces end to end) the SLO read
    samples: int
    checks: tuple[Check, ...] = ()
    explanation: str | None = None
    attribution: tuple[Attribution, ...] = field(default=())

    @property
    def values(self) -> dict[str, float]:
        return {check.signal: check.value for check in self.checks}

    def as_dict(self) -> dict[str, Any]:
        """Plain data (NaN as None) for JSON."""

        def clean(value: Any) -> Any:
            return None if isinstance(value, float) and math.isnan(value) else value

        return {
            "slo": self.slo,
            "scope": self.scope,
            "target": self.target,
            "condition": self.condition,
            "status": self.status,
            "severity": self.severity,
            "then": self.then,
            "window": self.window,
            "samples": self.samples,
            "checks": [{k: clean(v) for k, v in vars(c).items()} for c in self.checks],
            "explanation": self.explanation,
            "attribution": [{k: clean(v) for k, v in vars(a).items()} for a in self.attribution],
        }


# -- the frame: rows grouped once into arrays ------------------------------------------------


class Frame:
    """A window's samples as numpy arrays (sorted by ``ts``), with per-trace arrays; built
    once by `frame` and shared by every SLO that `evaluate` checks."""

    def __init__(self, app: Application, rows: Iterable[Mapping[str, Any]]) -> None:
        self.app = app
        self.stage_names = [stage.name for stage in app.stages]
        self.service_names = [service.name for service in app.services]
        stage_index = {name: i for i, name in enumerate(self.stage_names)}
        service_index = {name: i for i, name in enumerate(self.service_names)}
        self.stage_of_service = np.asarray(
            [stage_index[app.stage_of(name)] for name in self.service_names], dtype=np.int64
        )
        followed = {name for stage in app.stages for name in stage.after}
        self.sinks = [i for i, name in enumerate(self.stage_names) if name not in followed]

        instances: dict[tuple[int, str], int] = {}
        traces: dict[str, int] = {}
        self.row_nodes: dict[int, str] = {}
        svc: list[int] = []
        inst: list[int] = []
        trc: list[int] = []
        ts: list[float] = []
        lat: list[float] = []
        energy: list[float] = []
        correct: list[float] = []
        error: list[float] = []
        metrics: dict[str, tuple[list[int], list[float]]] = {}
        nan = math.nan
        for row in rows:
            s = service_index.get(row.get("service"))  # type: ignore[arg-type]
            if s is None:
                continue
            n = len(svc)
            svc.append(s)
            key = (s, str(row.get("instance") or "default"))
            i = instances.get(key)
            if i is None:
                i = instances[key] = len(instances)
                if row.get("node"):
                    self.row_nodes[i] = str(row["node"])
            inst.append(i)
            trace = row.get("trace_id")
            if trace:
                t = traces.get(trace)
                if t is None:
                    t = traces[trace] = len(traces)
                trc.append(t)
            else:
                trc.append(-1)
            ts.append(float(row["ts"]))
            value = row.get("latency_ms")
            lat.append(nan if value is None else float(value))
            value = row.get("energy_j")
            energy.append(nan if value is None else float(value))
            found = row.get("metrics") or {}
            prediction, target = row.get("prediction"), row.get("target")
            if "correct" in found:
                correct.append(float(found["correct"]))
            elif prediction is not None and target is not None:
                correct.append(float(prediction == target))
            else:
                correct.append(nan)
            flag = row.get("error", found.get("error"))
            error.append(1.0 if flag else 0.0)
            for name, value in found.items():
                if isinstance(value, int | float) and not isinstance(value, bool):
                    column = metrics.get(name)
                    if column is None:
                        column = metrics[name] = ([], [])
                    column[0].append(n)
                    column[1].append(float(value))

        order = np.argsort(np.asarray(ts, dtype=np.float64), kind="stable")
        self.size = len(order)
        self.ts: Floats = np.asarray(ts, dtype=np.float64)[order]
        self.service: Ints = np.asarray(svc, dtype=np.int64)[order]
        self.stage: Ints = self.stage_of_service[self.service] if self.size else self.service
        self.instance: Ints = np.asarray(inst, dtype=np.int64)[order]
        self.trace: Ints = np.asarray(trc, dtype=np.int64)[order]
        latency = np.asarray(lat, dtype=np.float64)[order]
        self.columns: dict[str, Floats] = {
            "latency_ms": latency,
            "energy_j": np.asarray(energy, dtype=np.float64)[order],
            "correct": np.asarray(correct, dtype=np.float64)[order],
            "error": np.asarray(error, dtype=np.float64)[order],
            "ts": self.ts,
        }
        inverse = np.empty_like(order)
        inverse[order] = np.arange(self.size)
        for name, (where, values) in metrics.items():
            if name in self.columns:
                continue
            full = np.full(self.size, np.nan)
            full[inverse[np.asarray(where, dtype=np.int64)]] = values
            self.columns[name] = full
        self.instance_names = [""] * len(instances)
        self.instance_service = np.zeros(len(instances), dtype=np.int64)
        for (s, name), i in instances.items():
            self.instance_names[i] = name
            self.instance_service[i] = s
        self.start = self.ts - np.nan_to_num(latency) / 1000.0
        self.end = float(self.ts[-1]) if self.size else math.nan
        self._traces(len(traces))
        self._cache: dict[tuple[str, str | None, str], Ints] = {}

    def _traces(self, count: int) -> None:
        stages = len(self.stage_names)
        self.trace_count = count
        inside = np.flatnonzero(self.trace >= 0)
        t = self.trace[inside]
        first = np.full(count, np.inf)
        last = np.full(count, -np.inf)
        np.minimum.at(first, t, self.start[inside])
        np.maximum.at(last, t, self.ts[inside])
        cell = t * stages + self.stage[inside]
        present = np.bincount(cell, minlength=count * stages).reshape(count, stages) > 0
        latency = np.nan_to_num(self.columns["latency_ms"][inside])
        #: time in each stage per trace (the slowest of its samples there: parallel services)
        spent = np.zeros(count * stages)
        np.maximum.at(spent, cell, latency)
        energy = self.columns["energy_j"][inside]
        known = ~np.isnan(energy)
        per_stage_energy = np.bincount(
            cell[known], weights=energy[known], minlength=count * stages
        ).reshape(count, stages)
        self.trace_complete: npt.NDArray[np.bool_] = np.asarray(present.all(axis=1), dtype=bool)
        self.trace_end = last
        self.trace_start = first
        self.trace_latency: Floats = (last - first) * 1000.0
        has_energy = np.bincount(t[known], minlength=count) > 0
        self.trace_energy: Floats = np.where(has_energy, per_stage_energy.sum(axis=1), np.nan)
        self.trace_error = np.bincount(t, weights=self.columns["error"][inside], minlength=count)
        self.trace_stage_time = spent.reshape(count, stages)
        self.trace_stage_energy = per_stage_energy
        self.trace_order = np.argsort(last, kind="stable")

    # -- selection -----------------------------------------------------------------------
    def rows_of(self, scope: Scope, target: str | None, window: Window) -> Ints:
        """Indices of the rows in ``window`` of a service or stage (sink stages end to end)."""
        key = (scope, target, str(window))
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        if scope == "service":
            mask = self.service == self.service_names.index(str(target))
        elif scope == "stage":
            mask = self.stage == self.stage_names.index(str(target))
        else:
            mask = np.isin(self.stage, self.sinks)
        if window.seconds is not None:
            mask &= self.ts >= self.end - window.seconds
            chosen = np.flatnonzero(mask)
        else:
            chosen = np.flatnonzero(mask)[-(window.samples or 1) :]
        self._cache[key] = chosen
        return chosen

    def traces_of(self, window: Window) -> Ints:
        """Indices of the traces that ended in ``window`` (the last ``samples`` traces)."""
        key: tuple[str, str | None, str] = ("traces", None, str(window))
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        order = self.trace_order
        if window.seconds is not None:
            chosen = order[self.trace_end[order] >= self.end - window.seconds]
        else:
            chosen = order[-(window.samples or 1) :]
        self._cache[key] = chosen
        return chosen


def frame(app: Application, rows: Iterable[Mapping[str, Any]]) -> Frame:
    """Group ``rows`` of ``app`` into arrays once, to evaluate many SLOs (or contracts)."""
    return Frame(app, rows)


# -- signals ---------------------------------------------------------------------------------


def _aggregate(aggregate: str, values: Floats) -> float:
    values = values[~np.isnan(values)]
    if not values.size:
        return math.nan
    if aggregate == "mean":
        return float(values.mean())
    if aggregate == "rate":
        return float(np.count_nonzero(values) / values.size)
    if aggregate == "max":
        return float(values.max())
    if aggregate == "min":
        return float(values.min())
    return _percentile(values, float(aggregate[1:]))


def _percentile(values: Floats, q: float) -> float:
    """``np.percentile(values, q)`` (linear interpolation) without its per-call overhead,
    which dominated a contract's evaluation: two order statistics by partition.

    >>> _percentile(np.array([4.0, 1.0, 3.0, 2.0]), 50.0), float(np.percentile([4, 1, 3, 2], 50))
    (2.5, 2.5)
    """
    position = q / 100.0 * (values.size - 1)
    low = int(position)
    high = min(low + 1, values.size - 1)
    picked = np.partition(values, (low, high)) if high != low else np.partition(values, low)
    fraction = position - low
    return float(picked[low] + (picked[high] - picked[low]) * fraction)


@dataclass
class _Read:
    """What one operand reads in one scope: the window value and, when the signal is an
    aggregate of per-sample (per-trace) values, those values for the attribution."""

    value: float
    per_item: Floats | None
    aggregate: str | None
    count: int


class _Reader:
    def __init__(
        self, contract: Contract, data: Frame, signals: Mapping[str, float] | None = None
    ) -> None:
        self.contract = contract
        self.data = data
        self.signals = signals or {}

    def read(self, operand: Operand, slo: SLO, window: Window) -> _Read:
        data = self.data
        if operand.is_observer:  # an observation agent's latest result, as given
            value = self.signals.get(operand.name, math.nan)
            return _Read(float(value), None, None, 1 if operand.name in self.signals else 0)
        if slo.scope == "end_to_end" and (
            operand.name in {"latency_ms", "energy_j"}
            or (operand.aggregate is None and operand.name in _TRACE_SIGNALS)
        ):
            return self._read_traces(operand, window)
        rows = data.rows_of(slo.scope, slo.target, window)
        name, aggregate = operand.name, operand.aggregate
        if aggregate is None and name in WINDOW_SIGNALS | {"energy_j"}:
            if name == "count":
                return _Read(float(rows.size), None, None, rows.size)
            if name == "throughput":
                return _Read(self._rate(rows.size, window, rows), None, None, rows.size)
            if name in {"availability", "error_rate"}:
                errors = data.columns["error"][rows]
                ok = 1.0 - errors if name == "availability" else errors
                return _Read(_aggregate("mean", ok), ok, "mean", rows.size)
            if name == "accuracy":
                name = "correct"
            if name == "total_energy_j":
                values = data.columns["energy_j"][rows]
                return _Read(float(np.nansum(values)), None, None, rows.size)
            if name == "co2_g":
                values = data.columns["energy_j"][rows] * self._g_per_j
                return _Read(_aggregate("mean", values), values, "mean", rows.size)
        column = data.columns.get(name)
        if column is None:
            return _Read(math.nan, None, aggregate or "mean", rows.size)
        values = column[rows]
        agg = aggregate or "mean"
        if agg == "rate":
            values = np.where(np.isnan(values), np.nan, (values != 0).astype(np.float64))
        return _Read(_aggregate(agg, values), values, agg, rows.size)

    @property
    def _g_per_j(self) -> float:
        return self.contract.carbon_g_per_kwh / _J_PER_KWH

    def _rate(self, count: int, window: Window, rows: Ints | None = None) -> float:
        data = self.data
        if window.seconds is not None:
            return count / window.seconds
        if rows is not None and rows.size:
            span = float(data.ts[rows[-1]] - data.start[rows].min())
        else:
            return math.nan
        return count / span if span > 0 else math.nan

    def _read_traces(self, operand: Operand, window: Window) -> _Read:
        data = self.data
        traces = data.traces_of(window)
        complete = traces[data.trace_complete[traces]]
        name, agg = operand.name, operand.aggregate or "mean"
        if operand.aggregate is None and name in WINDOW_SIGNALS:
            if name == "count":
                return _Read(float(complete.size), None, None, traces.size)
            if name == "throughput":
                if window.seconds is not None:
                    rate = complete.size / window.seconds
                else:
                    span = (
                        float(data.trace_end[complete].max() - data.trace_start[complete].min())
                        if complete.size
                        else 0.0
                    )
                    rate = complete.size / span if span > 0 else math.nan
                return _Read(rate, None, None, traces.size)
            if name in {"availability", "error_rate"}:
                good = (data.trace_complete[traces] & (data.trace_error[traces] == 0)).astype(
                    np.float64
                )
                values = good if name == "availability" else 1.0 - good
                return _Read(_aggregate("mean", values), values, "mean", traces.size)
            if name == "total_energy_j":
                return _Read(
                    float(np.nansum(data.trace_energy[complete])), None, None, complete.size
                )
            values = data.trace_energy[complete] * self._g_per_j  # co2_g
            return _Read(_aggregate("mean", values), values, "mean", complete.size)
        column = data.trace_latency if name == "latency_ms" else data.trace_energy
        values = column[complete]
        if agg == "rate":
            values = np.where(np.isnan(values), np.nan, (values != 0).astype(np.float64))
        return _Read(_aggregate(agg, values), values, agg, complete.size)


# -- statuses --------------------------------------------------------------------------------

_HOLDS = {
    "<": np.less,
    "<=": np.less_equal,
    ">": np.greater,
    ">=": np.greater_equal,
    "==": np.equal,
    "!=": np.not_equal,
}


def _status(op: str, value: float, threshold: float, margin: float) -> Status:
    if math.isnan(value):
        return "no_data"
    if not bool(_HOLDS[op](value, threshold)):
        return "violated"
    close = abs(value - threshold) <= margin * abs(threshold)
    return "at_risk" if op in {"<", "<=", ">", ">="} and close else "met"


def _combine(op: str, statuses: Sequence[Status]) -> Status:
    order: tuple[Status, ...]
    if op == "and":
        order = ("violated", "no_data", "at_risk", "met")
    else:
        order = ("met", "at_risk", "no_data", "violated")
    return next(status for status in order if status in statuses)


def _comparisons(condition: Condition) -> list[Comparison]:
    if isinstance(condition, Comparison):
        return [condition]
    return [c for part in condition.parts for c in _comparisons(part)]


# -- evaluation ------------------------------------------------------------------------------


def evaluate(
    contract: Contract,
    app: Application,
    rows: Iterable[Mapping[str, Any]] | Frame,
    *,
    nodes: Mapping[str, str] | None = None,
    signals: Mapping[str, float] | None = None,
) -> list[SLOResult]:
    """Evaluate every SLO of ``contract`` over ``rows`` (telemetry dicts, or a `frame` of them,
    to share the grouping between contracts). Time windows end at the last sample's ``ts``.
    ``nodes`` maps instances to their nodes (a sample's own ``node`` field also counts);
    ``signals`` holds the observation agents' latest results (``observer.<name>.<field>``).
    Raises `ContractError` when the contract does not fit ``app``."""
    issues = contract.issues_with(app)
    if issues:
        raise ContractError(issues)
    data = rows if isinstance(rows, Frame) else Frame(app, rows)
    reader = _Reader(contract, data, signals)
    results = []
    for slo in contract.slos:
        results.append(_evaluate_slo(contract, slo, reader, nodes or {}))
    return results


def _evaluate_slo(
    contract: Contract, slo: SLO, reader: _Reader, nodes: Mapping[str, str]
) -> SLOResult:
    condition = slo.parsed
    window = slo.window or contract.window
    margin = contract.at_risk_margin
    reads: dict[Comparison, _Read] = {}
    checks = []
    for comparison in _comparisons(condition):
        read = reader.read(comparison.operand, slo, window)
        reads[comparison] = read
        checks.append(
            Check(
                str(comparison.operand),
                comparison.op,
                comparison.threshold,
                read.value,
                _status(comparison.op, read.value, comparison.threshold, margin),
            )
        )
    status = _judge(condition, iter(checks))
    explanation: str | None = None
    attribution: tuple[Attribution, ...] = ()
    if status == "violated":
        worst = next(
            pair for pair in zip(reads, checks, strict=True) if pair[1].status == "violated"
        )
        comparison, check = worst
        explanation, attribution = _explain(
            slo, comparison, check, reads[comparison], reader, window, nodes
        )
    return SLOResult(
        slo=slo.name,
        scope=slo.scope,
        target=slo.target,
        condition=slo.condition,
        status=status,
        severity=slo.severity,
        then=slo.then,
        window=str(window),
        samples=max((read.count for read in reads.values()), default=0),
        checks=tuple(checks),
        explanation=explanation,
        attribution=attribution,
    )


def _judge(condition: Condition, checks: Any) -> Status:
    if isinstance(condition, Comparison):
        status: Status = next(checks).status
        return status
    assert isinstance(condition, Junction)
    return _combine(condition.op, [_judge(part, checks) for part in condition.parts])


# -- explanation -----------------------------------------------------------------------------


def _unit(signal: str) -> str:
    if "latency_ms" in signal:
        return " ms"
    if "energy_j" in signal:
        return " J"
    if signal == "co2_g":
        return " g"
    return ""


def _show(value: float, signal: str) -> str:
    return f"{value:.4g}{_unit(signal)}"


_UPPER = {"<", "<="}
_LOWER = {">", ">="}


def _explain(
    slo: SLO,
    comparison: Comparison,
    check: Check,
    read: _Read,
    reader: _Reader,
    window: Window,
    nodes: Mapping[str, str],
) -> tuple[str, tuple[Attribution, ...]]:
    data = reader.data
    signal = check.signal
    where = "end to end" if slo.scope == "end_to_end" else f"{slo.scope} `{slo.target}`"
    head = (
        f"{signal} {where} {_show(check.value, signal)}, "
        f"must be {check.op} {_show(check.threshold, signal)}"
    )
    operand = comparison.operand
    if operand.is_observer:  # the observer's own result: its run explains itself
        return f"{head} (the observer's latest run)", ()
    trace_signal = slo.scope == "end_to_end" and operand.name in {"latency_ms", "energy_j"}
    if trace_signal and read.per_item is not None and data.trace_count:
        return _explain_traces(head, comparison, read, reader, window, nodes)
    if slo.scope == "end_to_end" and operand.name in {"availability", "error_rate", "co2_g"}:
        # trace-level window signals: attribute over the rows of every stage
        scopes: list[tuple[Scope, str | None]] = [("stage", name) for name in data.stage_names]
    elif slo.scope == "end_to_end":
        scopes = [("stage", data.stage_names[i]) for i in data.sinks]
    else:
        scopes = [(slo.scope, slo.target)]
    found: list[Attribution] = []
    for scope, target in scopes:
        rows = data.rows_of(scope, target, window)
        found.extend(_instances(comparison, rows, reader, window, nodes))
    found.sort(key=lambda a: _badness(comparison.op, a, comparison.threshold), reverse=True)
    if not found:
        return f"{head}: no instance to attribute it to", ()
    top = found[0]
    return f"{head}: {_describe(top)}", tuple(found)


def _describe(item: Attribution) -> str:
    share = "" if item.share is None else f", {item.share:.0%} of the violating samples"
    node = f" on node `{item.node}`" if item.node else ""
    value = "" if item.value is None else f" {item.signal} {_show(item.value, item.signal)}"
    return f"instance `{item.instance}` (service `{item.service}`){node}{value}{share}"


def _badness(op: str, item: Attribution, threshold: float) -> float:
    if item.value is None or math.isnan(item.value):
        return -math.inf
    if op in _UPPER:
        return item.value
    if op in _LOWER:
        return -item.value
    return item.share or 0.0


def _bad_items(comparison: Comparison, values: Floats) -> npt.NDArray[np.bool_]:
    known = ~np.isnan(values)
    return known & ~_HOLDS[comparison.op](values, comparison.threshold)


def _instances(
    comparison: Comparison,
    rows: Ints,
    reader: _Reader,
    window: Window,
    nodes: Mapping[str, str],
) -> list[Attribution]:
    """Each instance among ``rows``, with its value of the compared signal and its share of
    the samples that, alone, break the comparison."""
    data = reader.data
    if not rows.size:
        return []
    operand = comparison.operand
    per_sample = _sample_values(operand, rows, reader)
    instances = data.instance[rows]
    size = len(data.instance_names)
    counts = np.bincount(instances, minlength=size)
    bad_counts: Floats | None = None
    if per_sample is not None:
        bad = _bad_items(comparison, per_sample)
        if bad.any():
            bad_counts = np.bincount(instances, weights=bad, minlength=size) / bad.sum()
    aggregate = operand.aggregate or "mean"
    found = []
    for i in np.flatnonzero(counts):
        mask = instances == i
        if per_sample is not None:
            value = _aggregate(aggregate, per_sample[mask])
        else:
            value = _instance_read(operand, rows[mask], reader, window)
        service = int(data.instance_service[i])
        name = data.instance_names[int(i)]
        found.append(
            Attribution(
                stage=data.stage_names[int(data.stage_of_service[service])],
                service=data.service_names[service],
                instance=name,
                node=nodes.get(name) or data.row_nodes.get(int(i)),
                share=None if bad_counts is None else float(bad_counts[i]),
                signal=str(operand),
                value=value,
            )
        )
    return found


def _sample_values(operand: Operand, rows: Ints, reader: _Reader) -> Floats | None:
    data = reader.data
    name = operand.name
    if operand.aggregate is None and name in {"count", "throughput", "total_energy_j"}:
        return None
    if operand.aggregate is None and name == "availability":
        return 1.0 - data.columns["error"][rows]
    if operand.aggregate is None and name == "error_rate":
        return data.columns["error"][rows]
    if operand.aggregate is None and name == "accuracy":
        name = "correct"
    if operand.aggregate is None and name == "co2_g":
        return data.columns["energy_j"][rows] * reader._g_per_j
    column = data.columns.get(name)
    if column is None:
        return None
    values = column[rows]
    if operand.aggregate == "rate":
        return np.where(np.isnan(values), np.nan, (values != 0).astype(np.float64))
    return values


def _instance_read(operand: Operand, rows: Ints, reader: _Reader, window: Window) -> float:
    name = operand.name
    if operand.aggregate is None and name == "count":
        return float(rows.size)
    if operand.aggregate is None and name == "throughput":
        return reader._rate(rows.size, window, rows)
    if operand.aggregate is None and name == "total_energy_j":
        return float(np.nansum(reader.data.columns["energy_j"][rows]))
    values = _sample_values(operand, rows, reader)
    if values is None:
        return math.nan
    return _aggregate(operand.aggregate or "mean", values)


def _explain_traces(
    head: str,
    comparison: Comparison,
    read: _Read,
    reader: _Reader,
    window: Window,
    nodes: Mapping[str, str],
) -> tuple[str, tuple[Attribution, ...]]:
    """Attribute an end-to-end latency or energy violation to stages — each stage's mean
    time (energy) per trace among the traces that break the threshold, less its mean among
    the others — and each stage to its worst instance over the window."""
    data = reader.data
    traces = data.traces_of(window)
    complete = traces[data.trace_complete[traces]]
    values = read.per_item
    assert values is not None
    bad = _bad_items(comparison, values)
    if not bad.any() or bad.all():  # e.g. a mean over traces that each pass: split at median
        middle = float(np.nanmedian(values))
        bad = values > middle if comparison.op not in _LOWER else values < middle
    per_stage = (
        data.trace_stage_time
        if comparison.operand.name == "latency_ms"
        else data.trace_stage_energy
    )[complete]
    slow = per_stage[bad].mean(axis=0)
    fast = per_stage[~bad].mean(axis=0) if (~bad).any() else np.zeros_like(slow)
    excess = slow - fast if comparison.op not in _LOWER else fast - slow
    positive = np.clip(excess, 0.0, None)
    total = float(positive.sum())
    shares = positive / total if total > 0 else np.full_like(positive, 1.0 / positive.size)
    in_bad = np.zeros(data.trace_count + 1, dtype=bool)  # the last cell: rows of no trace
    in_bad[complete[bad]] = True
    found: list[Attribution] = []
    for s in np.argsort(-shares, kind="stable"):
        if shares[s] <= 0:
            continue
        stage = data.stage_names[int(s)]
        rows = data.rows_of("stage", stage, window)
        rows = rows[in_bad[data.trace[rows]]]
        # a stage with under a tenth of the excess is listed without looking for its instance
        candidates = _instances(comparison, rows, reader, window, nodes) if shares[s] >= 0.1 else []
        # the stage's instance that is worst on the compared aggregate of its own samples
        per_row = Comparison(comparison.operand, comparison.op, comparison.threshold)
        candidates.sort(key=lambda a: _badness(per_row.op, a, per_row.threshold), reverse=True)
        top = candidates[0] if candidates else None
        found.append(
            Attribution(
                stage=stage,
                service=top.service if top else None,
                instance=top.instance if top else None,
                node=top.node if top else None,
                share=float(shares[s]),
                signal=str(comparison.operand),
                value=top.value if top else None,
            )
        )
    if not found:
        return f"{head}: no stage to attribute it to", ()
    first = found[0]
    text = f"{head}: stage `{first.stage}` holds {first.share or 0:.0%} of the excess"
    if first.instance is not None:
        node = f" on node `{first.node}`" if first.node else ""
        value = "" if first.value is None else f" {first.signal} {_show(first.value, first.signal)}"
        text += f"; instance `{first.instance}` (service `{first.service}`){node}{value}"
    return text, tuple(found)
