"""Monitor: turn one window of telemetry into the signals the boundaries and strategies read.

Pure functions over a list of samples; the engine decides when a window closes and which
drift detectors (already fitted on the reference) to pass in.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

import numpy as np

from harmonia.core.conditions import AGGREGATES, Aggregate, Operand
from harmonia.core.drift import DriftDetector
from harmonia.core.policy import Policy
from harmonia.core.scoring import normalize_energy, score
from harmonia.core.telemetry import TelemetrySample

_SAMPLE_FIELDS = frozenset({"latency_ms", "energy_j", "prediction", "target", "drift_value"})
_LATENCY_SUMMARY: tuple[Aggregate, ...] = ("p50", "p95", "p99")
_PREDICTION = attrgetter("prediction")
_TARGET = attrgetter("target")
_SERVED = attrgetter("model", "model_version")


@dataclass(frozen=True)
class WindowSummary:
    """One closed window: its span, the model that served it, and every signal computed.

    ``signals`` maps canonical keys (``score``, ``quality``, ``energy_j``, ``energy_norm``,
    ``r2``, ``mae``, ``p95(latency_ms)``, ``drift.kl``...) to numbers; NaN means unknown.
    ``drift_values`` are the watched value's, ``features`` the values of each other metric
    the policy's ``drift.features`` names (samples that lack one are skipped).
    """

    start: float
    end: float
    model: str
    version: int | None
    count: int
    signals: dict[str, float]
    drift_values: np.ndarray = field(repr=False)
    drift_details: dict[str, dict[str, Any]] = field(default_factory=dict)
    features: dict[str, np.ndarray] = field(default_factory=dict, repr=False)


def metric_values(samples: Sequence[TelemetrySample], name: str) -> np.ndarray:
    """Values of one metric over the samples that carry it (a sample field or ``metrics``)."""
    values: list[Any]
    if name in _SAMPLE_FIELDS:
        values = list(map(attrgetter(name), samples))
    else:
        values = [s.metrics.get(name) for s in samples]
    if None in values:  # a C-level scan; most windows have every value
        values = [v for v in values if v is not None]
    return np.array(values, dtype=float)


def aggregate(values: np.ndarray, how: Aggregate, q: float | None = None) -> float:
    """One aggregate of a metric's values over the window (``q``: the percentile of
    ``percentile``); NaN when the window has no value, but a count of none is 0."""
    if how == "count":
        return float(values.size)
    if values.size == 0:
        return math.nan
    if how == "mean":
        return float(values.mean())
    if how == "sum":
        return float(values.sum())
    if how == "max":
        return float(values.max())
    if how == "min":
        return float(values.min())
    if how == "rate":
        return float(np.count_nonzero(values) / values.size)
    return percentile(values, q if how == "percentile" and q is not None else float(how[1:]))


def percentile(values: np.ndarray, q: float) -> float:
    """``np.percentile(values, q)`` (linear interpolation) without its per-call overhead,
    which dominated a contract's evaluation: two order statistics by partition.

    >>> percentile(np.array([4.0, 1.0, 3.0, 2.0]), 50.0), float(np.percentile([4, 1, 3, 2], 50))
    (2.5, 2.5)
    """
    position = q / 100.0 * (values.size - 1)
    low = int(position)
    high = min(low + 1, values.size - 1)
    picked = np.partition(values, (low, high)) if high != low else np.partition(values, low)
    fraction = position - low
    return float(picked[low] + (picked[high] - picked[low]) * fraction)


def operand_value(samples: Sequence[TelemetrySample], operand: Operand) -> float:
    """What a non-derived operand reads over a window: the aggregate of its metric over the
    samples its selector keeps, or the ratio of two such aggregates (NaN for x / 0)."""
    if operand.aggregate == "ratio":
        numerator, denominator = (operand_value(samples, term) for term in operand.terms)
        return numerator / denominator if denominator else math.nan
    if operand.selector:
        samples = [s for s in samples if all(m.holds(_label(s, m.label)) for m in operand.selector)]
    how = operand.aggregate or "mean"
    if not operand.name:  # count() of the samples
        return float(len(samples))
    return aggregate(metric_values(samples, operand.name), how, operand.q)


def _label(sample: TelemetrySample, label: str) -> str | None:
    value = getattr(sample, label, None)
    return None if value is None else str(value)


def r2_and_mae(predicted: np.ndarray, actual: np.ndarray) -> tuple[float, float]:
    """R² and MAE of predictions; R² is NaN with fewer than two values or constant targets.

    >>> r2_and_mae(np.array([1.0, 2.0, 3.0]), np.array([1.0, 3.0, 5.0]))
    (0.375, 1.0)
    """
    if predicted.size == 0:
        return math.nan, math.nan
    mae = float(np.abs(predicted - actual).mean())
    total = float(((actual - actual.mean()) ** 2).sum())
    if predicted.size < 2 or total == 0.0:
        return math.nan, mae
    residual = float(((actual - predicted) ** 2).sum())
    return 1.0 - residual / total, mae


def regression_quality(samples: Sequence[TelemetrySample]) -> tuple[float, float]:
    """R² and MAE over the samples that have both a prediction and a target."""
    predicted = list(map(_PREDICTION, samples))
    actual = list(map(_TARGET, samples))
    if None not in predicted and None not in actual:  # every sample has both: no pairing
        return r2_and_mae(np.array(predicted, dtype=float), np.array(actual, dtype=float))
    pairs = np.asarray(
        [
            (s.prediction, s.target)
            for s in samples
            if s.prediction is not None and s.target is not None
        ],
        dtype=float,
    ).reshape(-1, 2)
    return r2_and_mae(pairs[:, 0], pairs[:, 1])


def classification_accuracy(samples: Sequence[TelemetrySample]) -> float:
    """Share of the samples with a target whose predicted class equals it (NaN if none has).

    Predictions and targets are class indices carried as numbers, so equality is exact.
    """
    pairs = [
        (s.prediction, s.target)
        for s in samples
        if s.prediction is not None and s.target is not None
    ]
    if not pairs:
        return math.nan
    return sum(1 for predicted, actual in pairs if predicted == actual) / len(pairs)


def window_quality(samples: Sequence[TelemetrySample], quality: str) -> float:
    """The objective's quality: R² from predictions and targets, classification accuracy
    (``accuracy``) from predicted and true classes, else a metric's mean."""
    if quality == "r2":
        return regression_quality(samples)[0]
    if quality == "accuracy":
        return classification_accuracy(samples)
    return aggregate(metric_values(samples, quality), "mean")


def split_at_switches(samples: Sequence[TelemetrySample]) -> list[list[TelemetrySample]]:
    """A window cut at each switch: the consecutive runs of samples served by one model and
    version, in order (fair attribution: each run is credited to the model that served it).
    """
    served = list(map(_SERVED, samples))
    if not served:
        return []
    if served.count(served[0]) == len(served):  # the usual window: no switch in it
        return [list(samples)]
    parts: list[list[TelemetrySample]] = []
    start = 0
    for i in range(1, len(served)):
        if served[i] != served[i - 1]:
            parts.append(list(samples[start:i]))
            start = i
    parts.append(list(samples[start:]))
    return parts


def summarize(
    samples: Sequence[TelemetrySample],
    policy: Policy,
    *,
    model: str,
    version: int | None,
    detectors: Mapping[str, DriftDetector] | None = None,
) -> WindowSummary:
    """Compute a window's signals: quality, energy, score, what the boundaries read, drift."""
    if not samples:
        raise ValueError("cannot summarize an empty window")
    objective = policy.objective
    signals: dict[str, float] = {"count": float(len(samples))}

    if objective.quality == "accuracy":
        # a classifier: predictions and targets are classes, for which R² means nothing
        quality = classification_accuracy(samples)
        signals["accuracy"] = quality
    else:
        r2, mae = regression_quality(samples)
        if not math.isnan(mae):
            signals["r2"], signals["mae"] = r2, mae
        quality = r2 if objective.quality == "r2" else window_quality(samples, objective.quality)
    energy = aggregate(metric_values(samples, "energy_j"), "mean")
    signals["quality"] = quality
    signals["energy_j"] = energy
    signals["energy_norm"] = (
        math.nan if math.isnan(energy) else normalize_energy(energy, objective.energy_range_j)
    )
    signals["score"] = score(quality, energy, objective)

    latencies = metric_values(samples, "latency_ms")
    if latencies.size:
        signals["mean(latency_ms)"] = float(latencies.mean())
        # one call for every percentile: the sort is the cost, so share it
        cuts = np.percentile(latencies, [float(how[1:]) for how in _LATENCY_SUMMARY])
        for how, value in zip(_LATENCY_SUMMARY, cuts.tolist(), strict=True):
            signals[f"{how}(latency_ms)"] = value

    for operand in policy.operands():
        if not operand.is_derived:
            signals[operand.key] = operand_value(samples, operand)

    drift_values = metric_values(samples, policy.drift.watch)
    details: dict[str, dict[str, Any]] = {}
    for name, detector in (detectors or {}).items():
        if drift_values.size == 0:
            signals[f"drift.{name}"] = math.nan
            continue
        result = detector.score(drift_values)
        signals[f"drift.{name}"] = result.statistic
        details[name] = {"drifted": result.drifted, **result.detail}

    stamps = [s.ts for s in samples]
    return WindowSummary(
        start=min(stamps),
        end=max(stamps),
        model=model,
        version=version,
        count=len(samples),
        signals=signals,
        drift_values=drift_values,
        drift_details=details,
        features={name: metric_values(samples, name) for name in policy.drift.features},
    )


__all__ = [
    "AGGREGATES",
    "WindowSummary",
    "aggregate",
    "classification_accuracy",
    "metric_values",
    "operand_value",
    "percentile",
    "r2_and_mae",
    "regression_quality",
    "split_at_switches",
    "summarize",
    "window_quality",
]
