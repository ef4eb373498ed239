"""Outlier detection over a window with scikit-learn: Isolation Forest and Local Outlier Factor.

Each run fits the model on the window itself and flags the samples it calls outliers (an
unsupervised look at "what in the last N samples does not look like the rest"). Needs
scikit-learn, in the ``systems`` extra; it is imported on first use.

Fields: ``anomalies`` (flagged samples), ``fraction`` (of the samples with the metrics),
``score`` (the highest outlier score in the window), ``mean_score``, ``count``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from harmonia.observation._checks import check_fraction, check_int, need
from harmonia.observation._protocol import ObserverResult, Window


def _result(
    window: Window, name: str, rows: np.ndarray, outlier: np.ndarray, scores: np.ndarray
) -> ObserverResult:
    flagged = rows[outlier]
    n = len(rows)
    values = {
        "count": n,
        "anomalies": len(flagged),
        "fraction": len(flagged) / n,
        "score": float(scores.max()),
        "mean_score": float(scores.mean()),
    }
    return window.result(
        values, flagged.tolist(), f"{name}: {len(flagged)} of {n} samples are outliers"
    )


def _too_few(window: Window, name: str, n: int, minimum: int) -> ObserverResult:
    return window.result(
        {"count": n, "anomalies": 0, "fraction": 0.0},
        (),
        f"{name}: {n} samples with {', '.join(window.metrics)}, fewer than {minimum}: not run",
    )


class IsolationForestObserver:
    """scikit-learn's ``IsolationForest`` fitted on each window; ``score`` in [0, 1], above
    about 0.6 anomalous."""

    name: ClassVar[str] = "isolation_forest"
    streaming: ClassVar[bool] = False

    def __init__(
        self,
        contamination: float | str = 0.02,
        n_estimators: int = 100,
        min_samples: int = 20,
        random_state: int = 0,
    ) -> None:
        self.contamination = contamination
        self.n_estimators = n_estimators
        self.min_samples = min_samples
        self.random_state = random_state

    def observe(self, window: Window) -> ObserverResult:
        contamination = check_fraction("contamination", self.contamination, auto=True)
        check_int("n_estimators", self.n_estimators, 1)
        minimum = check_int("min_samples", self.min_samples, 2)
        x, rows = window.matrix()
        if len(rows) < minimum:
            return _too_few(window, self.name, len(rows), minimum)
        ensemble = need("sklearn.ensemble", self.name, "systems")
        model: Any = ensemble.IsolationForest(
            n_estimators=self.n_estimators,
            contamination=contamination,
            random_state=self.random_state,
        )
        outlier = model.fit_predict(x) == -1
        return _result(window, self.name, rows, outlier, -model.score_samples(x))


class LOFObserver:
    """scikit-learn's ``LocalOutlierFactor`` over each window; ``score`` is the largest local
    outlier factor (about 1 for an inlier)."""

    name: ClassVar[str] = "lof"
    streaming: ClassVar[bool] = False

    def __init__(
        self, n_neighbors: int = 20, contamination: float | str = 0.02, min_samples: int = 20
    ) -> None:
        self.n_neighbors = n_neighbors
        self.contamination = contamination
        self.min_samples = min_samples

    def observe(self, window: Window) -> ObserverResult:
        contamination = check_fraction("contamination", self.contamination, auto=True)
        neighbors = check_int("n_neighbors", self.n_neighbors, 1)
        minimum = check_int("min_samples", self.min_samples, 2)
        x, rows = window.matrix()
        if len(rows) < max(minimum, 2):
            return _too_few(window, self.name, len(rows), minimum)
        neighbors_module = need("sklearn.neighbors", self.name, "systems")
        model: Any = neighbors_module.LocalOutlierFactor(
            n_neighbors=min(neighbors, len(rows) - 1), contamination=contamination
        )
        outlier = model.fit_predict(x) == -1
        return _result(window, self.name, rows, outlier, -model.negative_outlier_factor_)
