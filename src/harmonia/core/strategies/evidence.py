"""What a strategy saw each model score, and on what data: the evidence `harmonia` decides on.

Each closed window leaves one `Evidence` for the model that served it: its score, the
window's number, whether its data had drifted, a quantile sketch of its drift values (any
drift detector can be fitted on it), so that a later window can ask which scores were
measured on data like its own, and the stress-test condition the window's inputs looked like
(`harmonia.core.strategies.stress`), if any.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from harmonia.core.knowledge import fingerprint


@dataclass(frozen=True)
class Evidence:
    """A model's score on one window, when, and what that window's data looked like."""

    score: float
    window: int
    drifted: bool
    sketch: tuple[float, ...] = ()
    condition: str | None = None


def sketch(values: np.ndarray) -> tuple[float, ...]:
    """Drift values as a version keeps its training data's: a quantile sketch (empty where
    there are none)."""
    finite = values[np.isfinite(values)] if values.size else values
    return fingerprint(finite) if finite.size else ()


class EvidenceLog:
    """Each model's scores, kept for ``ttl`` windows.

    >>> log = EvidenceLog(ttl=10)
    >>> log.record("svm", Evidence(0.9, window=1, drifted=False))
    >>> log.latest(now=2, drifted=False)
    {'svm': 0.9}
    >>> log.latest(now=12, drifted=False)
    {}
    """

    def __init__(self, ttl: int) -> None:
        self.ttl = ttl
        self.by_model: dict[str, list[Evidence]] = {}

    def record(self, model: str, evidence: Evidence) -> None:
        """Keep a model's score on the window just closed, forgetting those too old to count."""
        kept = [e for e in self.by_model.get(model, []) if evidence.window - e.window < self.ttl]
        self.by_model[model] = [*kept, evidence]

    def latest(
        self, now: int, drifted: bool, alike: Callable[[Evidence], bool] | None = None
    ) -> dict[str, float]:
        """Each model's latest score younger than ``ttl`` windows at window ``now``, measured
        in the drift state ``drifted`` and, with ``alike``, on data it accepts (window
        ``now``'s own score always counts)."""
        recent: dict[str, float] = {}
        for model, history in self.by_model.items():
            for evidence in reversed(history):
                if now - evidence.window >= self.ttl or evidence.drifted != drifted:
                    continue
                if alike is not None and evidence.window != now and not alike(evidence):
                    continue
                recent[model] = evidence.score
                break
        return recent

    def previous(self, model: str, drifted: bool, now: int) -> float:
        """The model's score on the window before ``now``, if it served it in the same drift
        state (NaN otherwise)."""
        history = self.by_model.get(model, [])
        last = history[-1] if history else None
        if last is None or last.window != now - 1 or last.drifted != drifted:
            return math.nan
        return last.score
