"""Streaming detectors: river's ADWIN and Page-Hinkley behind the `DriftDetector` protocol.

These watch a stream one value at a time instead of comparing two samples. ``fit(reference)``
starts a fresh river detector and feeds it the reference values in order, a warm-up that
gives it a picture of the stable stream; ``score(window)`` goes on feeding the window, so the
detector keeps its state across ``score`` calls, as a stream detector must. The statistic is
the number of change points river flagged while the window was fed (a float, 0.0 for none);
``detail["indices"]`` lists the positions in the window where they were flagged, and
``update(x)`` feeds a single value, river style.

After a detection river starts the detector afresh at the next value, so the detections in
one window are separate changes, each found on the data after the previous one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, Literal, Self

from numpy.typing import ArrayLike
from river.base import DriftDetector as RiverDriftDetector
from river.drift import ADWIN, PageHinkley

from harmonia.drift._checks import check_fitted, check_int, check_real
from harmonia.drift._protocol import DriftScore, as_1d

Mode = Literal["up", "down", "both"]

# river's ADWIN constructor carries no annotations; give it the type it has.
_ADWIN: Callable[..., RiverDriftDetector] = ADWIN


class _RiverStream:
    """What ADWIN and Page-Hinkley share: warm-up in ``fit``, counting in ``score``."""

    detector_: RiverDriftDetector
    reference_detections_: int

    def _new_detector(self) -> RiverDriftDetector:
        raise NotImplementedError

    def _drifted(self, detections: int) -> bool:
        raise NotImplementedError

    def fit(self, reference: ArrayLike) -> Self:
        """Start a fresh river detector and feed it the reference, in order, as a warm-up.

        ``reference_detections_`` counts the changes found inside the reference itself: a
        non-zero count says the reference was not one stable regime.
        """
        values = as_1d(reference, "reference")
        detector = self._new_detector()
        detections = 0
        for value in values.tolist():
            detector.update(value)
            detections += bool(detector.drift_detected)
        self.detector_ = detector
        self.reference_detections_ = detections
        return self

    def update(self, x: float) -> bool:
        """Feed one value; True when river flags a change at it."""
        check_fitted(self, "detector_")
        value = float(as_1d([x], "x")[0])
        self.detector_.update(value)
        return bool(self.detector_.drift_detected)

    def score(self, window: ArrayLike) -> DriftScore:
        """Feed the window in order; the statistic is the number of changes flagged in it."""
        check_fitted(self, "detector_")
        values = as_1d(window, "window")  # validated whole, so a bad window feeds nothing
        indices: list[int] = []
        for index, value in enumerate(values.tolist()):
            self.detector_.update(value)
            if self.detector_.drift_detected:
                indices.append(index)
        return DriftScore(
            statistic=float(len(indices)),
            drifted=self._drifted(len(indices)),
            detail={"indices": indices, "n_seen": int(values.size)},
        )


class ADWINDetector(_RiverStream):
    """ADWIN (adaptive windowing, Bifet & Gavaldà 2007) through ``river.drift.ADWIN``.

    ADWIN keeps a window of recent values and cuts it where the means of the two parts
    differ more than chance allows at confidence ``delta``; so it reacts to changes of the
    mean, with a false-alarm guarantee and no bins to choose. The statistic is the number of
    changes flagged in the window, and ``threshold`` is 0.0: any detection makes the window
    drifted (``statistic > threshold``). It is an attribute, not a parameter, because a
    detection already is ADWIN's verdict at ``delta``; raise it to demand several.

    Parameters
    ----------
    delta
        Confidence value in (0, 1); smaller means fewer false alarms and slower detection.

    Examples
    --------
    >>> import numpy as np
    >>> from harmonia.drift import ADWINDetector
    >>> rng = np.random.default_rng(42)
    >>> detector = ADWINDetector().fit(rng.normal(0.0, 1.0, 1000))
    >>> detector.score(rng.normal(0.0, 1.0, 500)).drifted
    False
    >>> result = detector.score(rng.normal(3.0, 1.0, 500))
    >>> result.drifted, result.detail["indices"][0] < 100
    (True, True)
    """

    name: ClassVar[str] = "adwin"

    def __init__(self, delta: float = 0.002):
        check_real(delta, "delta", low=0.0, high=1.0, low_open=True, high_open=True)
        self.delta = delta
        self.threshold: float = 0.0

    def _new_detector(self) -> RiverDriftDetector:
        return _ADWIN(delta=self.delta)

    def _drifted(self, detections: int) -> bool:
        return detections > self.threshold


class PageHinkleyDetector(_RiverStream):
    """The Page-Hinkley test (a CUSUM on the deviation from the running mean), via river.

    It accumulates each value's deviation from the running mean, less the tolerance
    ``delta``, and flags a change when the accumulated sum rises more than ``threshold``
    (river's λ) above its minimum (``mode="up"``), falls that far below its maximum
    (``"down"``), or either (``"both"``, the default: a drift of a signal can go either way).
    ``threshold`` is therefore λ, in the units of the values times a number of steps, and not
    a bound on the statistic: the statistic is the number of changes flagged in the window,
    and the window is drifted when it is at least one.

    The defaults are river's. Because λ is in the units of the values, scale it with their
    noise: on unit-variance noise, λ = 50 gives a false alarm in about a third of 500-value
    windows after a 2000-value warm-up (λ = 100 in about one in fifty).

    Parameters
    ----------
    min_instances
        Values to see before any detection is allowed (after the start and every detection).
    delta
        Tolerated deviation per value.
    threshold
        λ, the cumulative deviation that signals a change.
    alpha
        Forgetting factor of the cumulative sums, in (0, 1].
    mode
        Which direction of change to detect: "up", "down" or "both".

    Examples
    --------
    >>> import numpy as np
    >>> from harmonia.drift import PageHinkleyDetector
    >>> rng = np.random.default_rng(42)
    >>> detector = PageHinkleyDetector().fit(rng.normal(0.0, 1.0, 1000))
    >>> detector.score(rng.normal(0.0, 1.0, 500)).drifted
    False
    >>> result = detector.score(rng.normal(3.0, 1.0, 500))
    >>> result.drifted, result.detail["indices"][0] < 100
    (True, True)
    """

    name: ClassVar[str] = "page_hinkley"

    def __init__(
        self,
        min_instances: int = 30,
        delta: float = 0.005,
        threshold: float = 50.0,
        alpha: float = 1 - 0.0001,
        mode: Mode = "both",
    ):
        check_int(min_instances, "min_instances", minimum=1)
        check_real(delta, "delta", low=0.0)
        check_real(threshold, "threshold", low=0.0, low_open=True)
        check_real(alpha, "alpha", low=0.0, high=1.0, low_open=True)
        if mode not in ("up", "down", "both"):
            raise ValueError(f"mode must be 'up', 'down' or 'both', got {mode!r}")
        self.min_instances = min_instances
        self.delta = delta
        self.threshold = threshold
        self.alpha = alpha
        self.mode = mode

    def _new_detector(self) -> RiverDriftDetector:
        return PageHinkley(
            min_instances=self.min_instances,
            delta=self.delta,
            threshold=self.threshold,
            alpha=self.alpha,
            mode=self.mode,
        )

    def _drifted(self, detections: int) -> bool:
        return detections > 0
