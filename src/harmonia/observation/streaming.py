"""Streaming anomaly detection with river's Half-Space Trees.

Each sample is scored, then learned, once, in arrival order; the model keeps its state across
runs. The trees want features in [0, 1]: each metric is standardised with its running mean and
standard deviation (learned from the samples before it) and squashed into (0, 1) by a logistic
curve, so the usual values fill the middle and a spike, however large, lands near an end the
usual values never reach. river is in the ``server`` and ``systems`` extras; it is imported
on first use.

Fields: ``anomalies``, ``fraction``, ``score`` (the highest score among the new samples, in
[0, 1]), ``mean_score``, ``count`` (new samples with the metrics), ``seen`` (since the start).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from harmonia.core.numbers import is_number
from harmonia.observation._checks import check_int, need
from harmonia.observation._protocol import ObserverResult, Window


class HalfSpaceTreesObserver:
    """river's ``HalfSpaceTrees``; a sample whose score reaches ``threshold`` is flagged (none
    during the first ``window_size`` samples, while the trees learn what is normal)."""

    name: ClassVar[str] = "half_space_trees"
    streaming: ClassVar[bool] = True

    model_: Any
    seen_: int
    moments_: dict[str, list[float]]

    def __init__(
        self,
        n_trees: int = 25,
        height: int = 5,
        window_size: int = 100,
        threshold: float = 0.9,
        seed: int = 0,
    ) -> None:
        self.n_trees = n_trees
        self.height = height
        self.window_size = window_size
        self.threshold = threshold
        self.seed = seed

    def _model(self) -> Any:
        if not hasattr(self, "model_"):
            check_int("n_trees", self.n_trees, 1)
            check_int("height", self.height, 1)
            check_int("window_size", self.window_size, 1)
            good = is_number(self.threshold)
            if not good or not 0 < self.threshold <= 1:
                raise ValueError(f"threshold must be in (0, 1], got {self.threshold!r}")
            anomaly = need("river.anomaly", self.name, "server")
            trees = anomaly.HalfSpaceTrees(
                n_trees=self.n_trees,
                height=self.height,
                window_size=self.window_size,
                seed=self.seed,
            )
            self.model_ = trees
            self.seen_ = 0
            self.moments_ = {}
        return self.model_

    def _squash(self, metric: str, value: float) -> float:
        n, mean, m2 = self.moments_.get(metric, (0.0, 0.0, 0.0))
        std = math.sqrt(m2 / n) if n > 1 else 0.0
        z = (value - mean) / std if std > 0 else 0.0
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z / 3.0))))

    def _learn(self, metric: str, value: float) -> None:
        """Welford's running mean and variance."""
        n, mean, m2 = self.moments_.setdefault(metric, [0.0, 0.0, 0.0])
        n += 1
        delta = value - mean
        mean += delta / n
        self.moments_[metric] = [n, mean, m2 + delta * (value - mean)]

    def observe(self, window: Window) -> ObserverResult:
        model = self._model()
        x, rows = window.matrix()
        scores: list[float] = []
        flagged: list[int] = []
        for row, values in zip(rows.tolist(), x.tolist(), strict=True):
            features = {m: self._squash(m, v) for m, v in zip(window.metrics, values, strict=True)}
            score = float(model.score_one(features))
            model.learn_one(features)
            for metric, value in zip(window.metrics, values, strict=True):
                self._learn(metric, value)
            self.seen_ += 1
            scores.append(score)
            if self.seen_ > self.window_size and score >= self.threshold:
                flagged.append(row)
        n = len(scores)
        values_out: dict[str, float] = {
            "count": n,
            "seen": self.seen_,
            "anomalies": len(flagged),
            "fraction": len(flagged) / n if n else 0.0,
        }
        if n:
            values_out["score"] = max(scores)
            values_out["mean_score"] = sum(scores) / n
        return window.result(
            values_out,
            flagged,
            f"{self.name}: {len(flagged)} of {n} new samples scored >= {self.threshold}",
        )
