"""Why an SLO is violated: the excess traced to the stages, services, instances and nodes that
cause it (the explanation sentence and the structured attribution)."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from harmonia.core.conditions import Comparison, Operand
from harmonia.core.contracts._model import SLO, Attribution, Check, Floats, Ints, Scope
from harmonia.core.contracts._signals import _HOLDS, _aggregate, _Read, _Reader
from harmonia.core.policy import Window
from harmonia.core.units import format_energy, is_energy

# -- explanation -----------------------------------------------------------------------------


def _unit(signal: str) -> str:
    if "latency_ms" in signal:
        return " ms"
    if signal == "co2_g":
        return " g"
    return ""


def _show(value: float, signal: str) -> str:
    """A value with its unit; energy by the one rule (per inference or request in mJ, a
    total in J: `harmonia.core.units`), as the dashboard shows the same value."""
    if is_energy(signal):
        return format_energy(signal, value)
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
    trace_signal = (
        slo.scope == "end_to_end"
        and operand.name in {"latency_ms", "energy_j"}
        and not operand.is_expression
    )
    if trace_signal and read.per_item is not None and data.trace_count:
        return _explain_traces(head, comparison, read, reader, window, nodes)
    if slo.scope == "end_to_end" and (
        operand.name in {"availability", "error_rate", "co2_g"} or operand.is_expression
    ):
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
                node=reader.node_of(int(i)),
                share=None if bad_counts is None else float(bad_counts[i]),
                signal=str(operand),
                value=value,
            )
        )
    return found


def _sample_values(operand: Operand, rows: Ints, reader: _Reader) -> Floats | None:
    data = reader.data
    name = operand.name
    if operand.is_expression:  # read per instance instead (`_instance_read`)
        return None
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
    if operand.is_expression:
        return reader.expression(operand, rows).value
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
