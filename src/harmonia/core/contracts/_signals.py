"""What an SLO's operand reads from a frame in its scope and window, and how a compared value
becomes a status (met, at risk, violated, no data)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from harmonia.core.conditions import Comparison, Condition, Match, Operand
from harmonia.core.contracts._frame import Frame
from harmonia.core.contracts._model import (
    _TRACE_SIGNALS,
    SLO,
    WINDOW_SIGNALS,
    Contract,
    Floats,
    Ints,
    Status,
)
from harmonia.core.monitor import aggregate
from harmonia.core.pipeline import JOULES_PER_KWH
from harmonia.core.policy import Window

# -- signals ---------------------------------------------------------------------------------


def _aggregate(how: str, values: Floats, q: float | None = None) -> float:
    """`aggregate` over the values that are known (NaN: the sample did not report it)."""
    return aggregate(values[~np.isnan(values)], how, q)  # type: ignore[arg-type]


def _has_selector(operand: Operand) -> bool:
    return bool(operand.selector) or any(_has_selector(term) for term in operand.terms)


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
        self,
        contract: Contract,
        data: Frame,
        signals: Mapping[str, float] | None = None,
        nodes: Mapping[str, str] | None = None,
    ) -> None:
        self.contract = contract
        self.data = data
        self.signals = signals or {}
        self.nodes = nodes or {}

    def node_of(self, instance: int) -> str | None:
        name = self.data.instance_names[instance]
        return self.nodes.get(name) or self.data.row_nodes.get(instance)

    def read(self, operand: Operand, slo: SLO, window: Window) -> _Read:
        data = self.data
        if operand.is_observer:  # an observation agent's latest result, as given
            value = self.signals.get(operand.name, math.nan)
            return _Read(float(value), None, None, 1 if operand.name in self.signals else 0)
        if operand.is_expression:
            every_stage = slo.scope == "end_to_end" and _has_selector(operand)
            rows = data.rows_of(slo.scope, slo.target, window, every_stage=every_stage)
            return self.expression(operand, rows)
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

    def expression(self, operand: Operand, rows: Ints) -> _Read:
        """A consumer-defined metric over ``rows``: an aggregate of the rows its selector
        keeps (``count()`` counts them), or a ratio of two such aggregates."""
        if operand.aggregate == "ratio":
            numerator, denominator = (self.expression(term, rows).value for term in operand.terms)
            value = numerator / denominator if denominator else math.nan
            return _Read(value, None, None, rows.size)
        if operand.selector:
            rows = rows[self._selected(operand.selector, rows)]
        how = operand.aggregate or "mean"
        if not operand.name:
            return _Read(float(rows.size), None, None, rows.size)
        column = self.data.columns.get(operand.name)
        values = np.full(rows.size, np.nan) if column is None else column[rows]
        if how == "count":
            return _Read(float(np.count_nonzero(~np.isnan(values))), None, None, rows.size)
        per_item = values if how != "sum" else None
        return _Read(_aggregate(how, values, operand.q), per_item, how, rows.size)

    def _selected(self, selector: tuple[Match, ...], rows: Ints) -> npt.NDArray[np.bool_]:
        """Which of ``rows`` have labels that pass every test of ``selector``."""
        data = self.data
        keep = np.ones(rows.size, dtype=bool)
        for match in selector:
            names: Sequence[str | None]
            if match.label == "node":
                names = [self.node_of(i) for i in range(len(data.instance_names))]
                index = data.instance[rows]
            else:
                names, index = {
                    "model": (data.model_names, data.model),
                    "instance": (data.instance_names, data.instance),
                    "service": (data.service_names, data.service),
                    "stage": (data.stage_names, data.stage),
                }[match.label]
                index = index[rows]
            passing = [i for i, name in enumerate(names) if match.holds(name)]
            keep &= np.isin(index, passing)
        return keep

    @property
    def _g_per_j(self) -> float:
        return self.contract.carbon_g_per_kwh / JOULES_PER_KWH

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
