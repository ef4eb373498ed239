"""Correlation of a metric across two stages of one request, joined by ``trace_id``.

With ``left`` and ``right`` (stage names): the first metric at stage ``left`` against the
second (or, with one metric, the same) at stage ``right``, over the traces that reached both
(the last sample of each stage per trace). Without them: the first two metrics within each
sample (latency against energy, say).

Fields: ``score`` (the coefficient, in [-1, 1]; absent with fewer than ``min_pairs`` pairs or
no variance) and ``pairs``.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from harmonia.observation._checks import check_choice, check_int
from harmonia.observation._protocol import ObserverResult, Window, sample_value


def ranks(values: np.ndarray) -> np.ndarray:
    """Ranks from 1, ties given their average rank (as Spearman's coefficient needs)."""
    order = np.argsort(values, kind="mergesort")
    ranked = np.empty(len(values), dtype=float)
    ranked[order] = np.arange(1, len(values) + 1)
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranked)
    return (sums / counts)[inverse]


class CorrelationObserver:
    """Pearson's or Spearman's coefficient; flags nothing."""

    name: ClassVar[str] = "correlation"
    streaming: ClassVar[bool] = False

    def __init__(
        self,
        left: str | None = None,
        right: str | None = None,
        method: str = "pearson",
        min_pairs: int = 3,
    ) -> None:
        self.left = left
        self.right = right
        self.method = method
        self.min_pairs = min_pairs

    def _pairs(self, window: Window) -> tuple[np.ndarray, np.ndarray, str]:
        first = window.metrics[0]
        second = window.metrics[1] if len(window.metrics) > 1 else first
        if self.left is None and self.right is None:
            if len(window.metrics) < 2:
                raise ValueError("correlation without left/right stages needs two metrics")
            x, _ = window.matrix((first, second))
            return x[:, 0], x[:, 1], f"{first} and {second}"
        if self.left is None or self.right is None:
            raise ValueError("give both left and right stages, or neither")
        sides: dict[str, dict[object, float]] = {self.left: {}, self.right: {}}
        for sample in window.samples:
            trace, stage = sample.get("trace_id"), sample.get("stage")
            if trace is None or stage not in sides:
                continue
            value = sample_value(sample, first if stage == self.left else second)
            if np.isfinite(value):
                sides[str(stage)][trace] = value
        # a stage correlated with itself: pair each trace's value with itself
        common = [t for t in sides[self.left] if t in sides[self.right]]
        a = np.array([sides[self.left][t] for t in common], dtype=float)
        b = np.array([sides[self.right][t] for t in common], dtype=float)
        return a, b, f"{first} at {self.left} and {second} at {self.right}"

    def observe(self, window: Window) -> ObserverResult:
        method = check_choice("method", self.method, ("pearson", "spearman"))
        minimum = check_int("min_pairs", self.min_pairs, 2)
        a, b, what = self._pairs(window)
        values: dict[str, float] = {"pairs": len(a)}
        if len(a) < minimum or np.ptp(a) == 0 or np.ptp(b) == 0:
            return window.result(values, (), f"{method} of {what}: undefined over {len(a)} pairs")
        if method == "spearman":
            a, b = ranks(a), ranks(b)
        score = float(np.clip(np.corrcoef(a, b)[0, 1], -1.0, 1.0))
        values["score"] = score
        return window.result(values, (), f"{method} of {what}: {score:+.3f} over {len(a)} pairs")
