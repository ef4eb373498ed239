"""The `DriftDetector` protocol: compare recent data with a reference and say how far it moved.

It lives in `core` because the engine and the strategies use detectors; the implementations
live in `harmonia.drift` and are found by name through the ``harmonia.drift_detectors`` group.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, Self, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike


@dataclass(frozen=True)
class DriftScore:
    """The outcome of one comparison.

    ``statistic`` is what a policy's ``drift.<name>`` signal reads; ``drifted`` is the
    detector's own verdict at its ``threshold``; ``detail`` carries detector-specific facts
    (a p-value, the condition an image detector recognised, ...).
    """

    statistic: float
    drifted: bool
    detail: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class DriftDetector(Protocol):
    """Detects a change of distribution between a reference and a window of recent data.

    Like a scikit-learn estimator: the constructor only stores parameters, ``fit`` learns the
    reference (learned state ends in ``_``) and returns the detector, ``score`` compares a
    window with it. Streaming detectors (ADWIN, Page-Hinkley) also keep state across
    ``score`` calls, because a stream is what they watch.
    """

    name: ClassVar[str]
    threshold: float

    def fit(self, reference: ArrayLike) -> Self:
        """Learn the reference distribution (training data, or an earlier window)."""
        ...

    def score(self, window: ArrayLike) -> DriftScore:
        """Compare ``window`` with the fitted reference."""
        ...


def as_1d(values: ArrayLike, what: str) -> np.ndarray:
    """Finite float values as a flat array, or a ValueError that says what was wrong."""
    array = np.asarray(values, dtype=float).ravel()
    if array.size == 0:
        raise ValueError(f"{what} is empty")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{what} contains NaN or infinite values")
    return array
