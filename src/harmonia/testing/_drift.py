"""The conformance checks of a drift detector (entry-point group ``harmonia.drift_detectors``).

A detector is checked on one `DriftData`: a reference sample, a window from the same
distribution, a shifted window, an empty one and one holding a NaN. Scalar detectors take the
default (`scalar_data`); detectors of images take `image_data` (darkened) or
`blurred_image_data`; any other detector brings its own.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache, partial
from typing import Any

import numpy as np

from harmonia.core.drift import DriftDetector, DriftScore
from harmonia.plugins import DRIFT_DETECTORS, load_plugin
from harmonia.testing._check import Check, check_registered, plugin_label, raises, run_all


@dataclass(frozen=True)
class DriftData:
    """The windows a detector is checked on (each an array the detector accepts)."""

    #: what ``fit`` sees
    reference: np.ndarray
    #: drawn from the reference's distribution: must not be flagged
    same: np.ndarray
    #: clearly moved away from it: must be flagged
    shifted: np.ndarray
    #: no data: ``fit`` and ``score`` must raise ValueError ("empty")
    empty: np.ndarray
    #: a NaN among valid data: ``fit`` and ``score`` must raise ValueError ("NaN")
    with_nan: np.ndarray


@cache
def scalar_data() -> DriftData:
    """1-D samples: unit normals, and the same shifted by three standard deviations."""
    # Seeds checked to keep the streaming detectors quiet on the same-distribution window:
    # Page-Hinkley at river's default threshold (50) raises a false alarm in about a third
    # of such unit-variance streams, so a seed is part of what the check fixes.
    reference = np.random.default_rng(0).normal(0.0, 1.0, 2000)
    same = np.random.default_rng(1000).normal(0.0, 1.0, 500)
    shifted = np.random.default_rng(2000).normal(3.0, 1.0, 500)
    with_nan = same.copy()
    with_nan[17] = np.nan
    return DriftData(reference, same, shifted, np.array([]), with_nan)


def textured_images(seed: int, n: int = 16, size: int = 24) -> np.ndarray:
    """Grayscale images in [0, 1], mean about 0.5: random plaid patterns plus pixel noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    images = []
    for _ in range(n):
        fx, fy = rng.uniform(1.0, 4.0, 2)
        px, py = rng.uniform(0.0, 2 * np.pi, 2)
        pattern = np.sin(2 * np.pi * fx * x + px) * np.cos(2 * np.pi * fy * y + py)
        noise = rng.normal(0.0, 0.08, (size, size))
        images.append(np.clip(0.5 + 0.2 * pattern + noise, 0.0, 1.0))
    return np.stack(images)


@cache
def image_data() -> DriftData:
    """Batches of 24×24 grayscale images; the shifted batch is darkened."""
    same = textured_images(1)
    with_nan = same.copy()
    with_nan[3, 5, 7] = np.nan
    return DriftData(
        reference=textured_images(0),
        same=same,
        shifted=textured_images(2) * 0.3,
        empty=np.empty((0, 24, 24)),
        with_nan=with_nan,
    )


@cache
def blurred_image_data() -> DriftData:
    """As `image_data`, but the shifted batch is blurred rather than darkened (needs scipy)."""
    from scipy.ndimage import gaussian_filter

    data = image_data()
    blurred = gaussian_filter(textured_images(2), (0, 1.5, 1.5))
    return DriftData(data.reference, data.same, blurred, data.empty, data.with_nan)


Detector = type[Any] | Callable[..., DriftDetector]
Data = DriftData | Callable[[], DriftData]


def _init_params(cls: Detector) -> dict[str, inspect.Parameter]:
    return dict(inspect.signature(cls).parameters)


def _public_attributes(detector: object) -> set[str]:
    return {name for name in vars(detector) if not name.startswith("_")}


def _data(data: Data) -> DriftData:
    return data if isinstance(data, DriftData) else data()


# -- the checks --------------------------------------------------------------------------------
def _constructor_only_stores_parameters(cls: Detector, params: Mapping[str, Any] | None) -> None:
    signature = _init_params(cls)
    if params is not None:
        assert set(params) == set(signature), (
            f"params given {sorted(params)} must name every constructor parameter "
            f"{sorted(signature)}"
        )
    no_default = [n for n, p in signature.items() if p.default is inspect.Parameter.empty]
    assert not no_default, f"parameters without a default: {no_default}"
    built = [(cls(), {n: p.default for n, p in signature.items()})]
    if params is not None:
        built.append((cls(**params), dict(params)))
    for detector, expected in built:
        for name, value in expected.items():
            stored = getattr(detector, name)
            assert stored == value, f"parameter {name}: stored {stored!r}, given {value!r}"
        # sklearn's check: no learned (trailing underscore) state before fit, and nothing
        # but the parameters (and the protocol's ``threshold``) set at all.
        public = _public_attributes(detector)
        learned = [name for name in public if name.endswith("_")]
        assert not learned, f"learned state {learned} before fit"
        extra = public - set(signature) - {"threshold"}
        assert not extra, f"the constructor sets more than its parameters: {sorted(extra)}"
        assert isinstance(detector.threshold, int | float), "threshold is not a number"
        assert isinstance(detector, DriftDetector), "not a DriftDetector"


def _invalid_parameter_raises_value_error(cls: Detector, invalid: Mapping[str, Any]) -> None:
    with raises(ValueError):
        cls(**invalid)


def _score_before_fit_raises(cls: Detector, data: Data) -> None:
    with raises(RuntimeError, match=r"fit\(\)"):
        cls().score(_data(data).same)


def _fit_returns_self(cls: Detector, data: Data) -> None:
    detector = cls()
    assert detector.fit(_data(data).reference) is detector, "fit() does not return self"


def _same_distribution_is_not_drifted(cls: Detector, data: Data) -> None:
    d = _data(data)
    result = cls().fit(d.reference).score(d.same)
    assert isinstance(result, DriftScore), f"score() returned {type(result).__name__}"
    assert result.drifted is False, f"flagged a window from the same distribution: {result}"


def _shifted_window_is_drifted(cls: Detector, data: Data) -> None:
    d = _data(data)
    result = cls().fit(d.reference).score(d.shifted)
    assert result.drifted is True, f"missed a shifted window: {result}"


def _statistic_is_a_finite_float(cls: Detector, data: Data) -> None:
    d = _data(data)
    for which in ("same", "shifted"):
        result = cls().fit(d.reference).score(getattr(d, which))
        statistic = result.statistic
        assert type(statistic) is float, f"{which}: statistic is {type(statistic).__name__}"
        assert math.isfinite(statistic), f"{which}: statistic is {statistic}"
        assert isinstance(result.detail, dict), f"{which}: detail is not a dict"


def _deterministic(cls: Detector, data: Data) -> None:
    d = _data(data)
    first = cls().fit(d.reference)
    second = cls().fit(d.reference)
    for window in (d.same, d.shifted):
        assert first.score(window) == second.score(window), "two fits score differently"


def _empty_window_raises_value_error(cls: Detector, data: Data) -> None:
    d = _data(data)
    detector = cls().fit(d.reference)
    with raises(ValueError, match="empty"):
        detector.score(d.empty)


def _nan_in_window_raises_value_error(cls: Detector, data: Data) -> None:
    d = _data(data)
    detector = cls().fit(d.reference)
    with raises(ValueError, match="NaN"):
        detector.score(d.with_nan)


def _bad_reference_raises_value_error(cls: Detector, data: Data) -> None:
    d = _data(data)
    with raises(ValueError):
        cls().fit(d.empty)
    with raises(ValueError):
        cls().fit(d.with_nan)


_ON_DATA = [
    _score_before_fit_raises,
    _fit_returns_self,
    _same_distribution_is_not_drifted,
    _shifted_window_is_drifted,
    _statistic_is_a_finite_float,
    _deterministic,
    _empty_window_raises_value_error,
    _nan_in_window_raises_value_error,
    _bad_reference_raises_value_error,
]


def drift_detector_checks(
    detector: str | Detector,
    *,
    params: Mapping[str, Any] | None = None,
    invalid: Mapping[str, Any] | None = None,
    data: Data = scalar_data,
) -> list[Check]:
    """Every conformance check of one drift detector, each a `Check` to call.

    ``detector``: a name registered under ``harmonia.drift_detectors``, or the class.
    ``params``: valid, non-default values for every constructor parameter (the constructor
    must store them as given); ``invalid``: parameters the constructor must reject with
    ValueError (that check runs only when given); ``data``: a `DriftData`, or a function that
    makes one on first use (default `scalar_data`; `image_data`, `blurred_image_data`).
    """
    looked_up = detector if isinstance(detector, str) else None
    cls: Detector = (
        detector if not isinstance(detector, str) else load_plugin(DRIFT_DETECTORS, detector)
    )
    label = plugin_label(detector)
    checks = [
        Check(
            label,
            "registered_under_its_own_name",
            partial(check_registered, DRIFT_DETECTORS, cls, looked_up),
        ),
        Check(
            label,
            "constructor_only_stores_parameters",
            partial(_constructor_only_stores_parameters, cls, params),
        ),
    ]
    if invalid is not None:
        checks.append(
            Check(
                label,
                "invalid_parameter_raises_value_error",
                partial(_invalid_parameter_raises_value_error, cls, invalid),
            )
        )
    checks += [Check(label, c.__name__.lstrip("_"), partial(c, cls, data)) for c in _ON_DATA]
    return checks


def check_drift_detector(
    detector: str | Detector,
    *,
    params: Mapping[str, Any] | None = None,
    invalid: Mapping[str, Any] | None = None,
    data: Data = scalar_data,
) -> None:
    """Run every conformance check on one drift detector; the first failure raises an
    `AssertionError` naming the detector and the check. Arguments as `drift_detector_checks`.
    """
    run_all(drift_detector_checks(detector, params=params, invalid=invalid, data=data))
