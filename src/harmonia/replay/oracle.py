"""The hindsight oracle: per decision window, the model that scored best, known afterwards.

It sees every model's predictions for every sample, so no approach that only switches among
the same models, at the same window boundaries, can score better on the same objective. A
sweep of the quality weight traces the oracle's energy–accuracy frontier.

How a window's quality and a stream's metrics are computed is a `Quality`: R² for a
forecaster (the default), accuracy or confidence for a classifier, whose predictions are
rows ``(class, confidence)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from harmonia.core.monitor import r2_and_mae
from harmonia.core.policy import Objective, Weights
from harmonia.core.scoring import score


@dataclass(frozen=True)
class Quality:
    """How predictions are judged: the objective's quality on one window, and the named
    metrics over a whole stream (the headline first)."""

    metric: str
    window: Callable[[np.ndarray, np.ndarray], float]
    overall: Callable[[np.ndarray, np.ndarray], dict[str, float]]


def _regression(predicted: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    r2, mae = r2_and_mae(predicted, actual)
    return {"r2": r2, "mae": mae}


#: a forecaster's: R² per window; R² and MAE over the stream
R2 = Quality("r2", lambda p, a: r2_and_mae(p, a)[0], _regression)


def _accuracy(predicted: np.ndarray, actual: np.ndarray) -> float:
    return float(np.mean(predicted[:, 0] == actual)) if len(actual) else float("nan")


def _confidence(predicted: np.ndarray, actual: np.ndarray) -> float:
    return float(np.mean(predicted[:, 1])) if len(actual) else float("nan")


def _classification(predicted: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    return {"accuracy": _accuracy(predicted, actual), "confidence": _confidence(predicted, actual)}


def classification(quality: str = "accuracy") -> Quality:
    """A classifier's (predictions are rows ``(class, confidence)``): the window quality the
    objective names, ``accuracy`` or ``confidence``; accuracy and confidence over the stream.

    >>> judged = classification("accuracy")
    >>> judged.window(np.array([[1, 0.9], [2, 0.5]]), np.array([1, 1]))
    0.5
    """
    if quality not in ("accuracy", "confidence"):
        raise ValueError(f"a classifier's quality is accuracy or confidence, not {quality!r}")
    window = _accuracy if quality == "accuracy" else _confidence
    return Quality("accuracy", window, _classification)


@dataclass(frozen=True)
class OracleChoice:
    """The model chosen for each window, and what that choice achieves over the stream."""

    per_window: list[str]
    per_sample: list[str]
    predictions: np.ndarray
    metrics: dict[str, float]
    energy_j_per_inference: float
    objective: float

    @property
    def r2(self) -> float:
        return self.metrics.get("r2", float("nan"))

    @property
    def quality(self) -> float:
        """The headline metric over the stream."""
        return next(iter(self.metrics.values()))


def window_bounds(samples: int, window: int) -> list[tuple[int, int]]:
    """[start, end) of each decision window; a last partial window is included.

    >>> window_bounds(5, 2)
    [(0, 2), (2, 4), (4, 5)]
    """
    return [(start, min(start + window, samples)) for start in range(0, samples, window)]


def window_score(
    predicted: np.ndarray,
    actual: np.ndarray,
    energy_j: float,
    objective: Objective,
    quality: Quality = R2,
) -> float:
    """The objective's score of one window: the same formula the engine's monitor uses."""
    return score(quality.window(predicted, actual), energy_j, objective)


def with_training(energy_j: np.ndarray, training_joules: float) -> np.ndarray:
    """Per-sample energy with an approach's training energy (its retrains) spread evenly over
    its samples: what its energy per inference counts, and so what its objective scores. A
    retrain is not free: a strategy that retrains scores its cost, as HarmonE's evaluation
    counts it, and as a fixed configuration that never retrains does not pay it."""
    return energy_j + training_joules / len(energy_j) if len(energy_j) else energy_j


def mean_window_score(
    predicted: np.ndarray,
    actual: np.ndarray,
    energy_j: np.ndarray,
    objective: Objective,
    window: int,
    quality: Quality = R2,
) -> float:
    """Mean score over the complete windows of a stream (how approaches are compared)."""
    scores = [
        window_score(predicted[a:b], actual[a:b], float(energy_j[a:b].mean()), objective, quality)
        for a, b in window_bounds(len(actual), window)
        if b - a == window
    ]
    finite = [s for s in scores if not np.isnan(s)]
    return float(np.mean(finite)) if finite else float("nan")


def oracle(
    predictions: Mapping[str, np.ndarray],
    actual: np.ndarray,
    energy: Mapping[str, float],
    objective: Objective,
    window: int,
    quality: Quality = R2,
) -> OracleChoice:
    """Choose, for each window, the model whose window score is highest."""
    models = list(predictions)
    per_window: list[str] = []
    chosen = np.empty_like(predictions[models[0]])
    per_sample: list[str] = []
    for a, b in window_bounds(len(actual), window):
        scores = [
            window_score(predictions[m][a:b], actual[a:b], energy[m], objective, quality)
            for m in models
        ]
        finite = [s if not np.isnan(s) else -np.inf for s in scores]
        best = models[int(np.argmax(finite))]
        per_window.append(best)
        chosen[a:b] = predictions[best][a:b]
        per_sample.extend([best] * (b - a))
    energies = np.asarray([energy[m] for m in per_sample])
    return OracleChoice(
        per_window=per_window,
        per_sample=per_sample,
        predictions=chosen,
        metrics=quality.overall(chosen, actual),
        energy_j_per_inference=float(energies.mean()),
        objective=mean_window_score(chosen, actual, energies, objective, window, quality),
    )


def frontier(
    predictions: Mapping[str, np.ndarray],
    actual: np.ndarray,
    energy: Mapping[str, float],
    objective: Objective,
    window: int,
    steps: int = 21,
    quality: Quality = R2,
) -> list[tuple[float, float]]:
    """The oracle's (energy per inference, headline quality) for quality weights from 0 to 1,
    keeping the Pareto-optimal points (no other point has less energy and at least the
    quality), by energy.
    """
    points = set()
    for weight in np.linspace(0.0, 1.0, steps):
        weights = Weights(quality=float(weight), energy=float(1.0 - weight))
        swept = objective.model_copy(update={"weights": weights})
        choice = oracle(predictions, actual, energy, swept, window, quality)
        points.add((choice.energy_j_per_inference, choice.quality))
    pareto: list[tuple[float, float]] = []
    for point in sorted(points, key=lambda p: (p[0], -p[1])):
        if not pareto or point[1] > pareto[-1][1]:
            pareto.append(point)
    return pareto
