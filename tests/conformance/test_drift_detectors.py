"""One conformance suite for every built-in drift detector.

Each detector is imported by class (no installed entry points needed) and paired with a data
maker: scalar detectors get 1-D samples, the luminance detector batches of images. The suite
checks the scikit-learn estimator contract, the `DriftDetector` protocol and the basic
behaviour: quiet on data from the reference distribution, firing on shifted data.
"""

from __future__ import annotations

import inspect
import math
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harmonia.drift import (
    ADWINDetector,
    DriftDetector,
    DriftScore,
    JensenShannonDetector,
    KLDivergenceDetector,
    KSDetector,
    LuminanceDetector,
    PageHinkleyDetector,
    PSIDetector,
    SharpnessDetector,
)
from support import textured_images

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


@dataclass(frozen=True)
class Data:
    reference: np.ndarray
    same: np.ndarray
    shifted: np.ndarray
    empty: np.ndarray
    with_nan: np.ndarray


@cache
def scalar_data() -> Data:
    # Seeds checked to keep the streaming detectors quiet on the same-distribution window:
    # Page-Hinkley at river's default threshold (50) raises a false alarm in about a third
    # of such unit-variance streams, so a seed is part of what the test fixes.
    reference = np.random.default_rng(0).normal(0.0, 1.0, 2000)
    same = np.random.default_rng(1000).normal(0.0, 1.0, 500)
    shifted = np.random.default_rng(2000).normal(3.0, 1.0, 500)
    with_nan = same.copy()
    with_nan[17] = np.nan
    return Data(reference, same, shifted, np.array([]), with_nan)


@cache
def image_data() -> Data:
    same = textured_images(1)
    with_nan = same.copy()
    with_nan[3, 5, 7] = np.nan
    return Data(
        reference=textured_images(0),
        same=same,
        shifted=textured_images(2) * 0.3,  # darkened
        empty=np.empty((0, 24, 24)),
        with_nan=with_nan,
    )


@cache
def blurred_image_data() -> Data:
    from scipy.ndimage import gaussian_filter

    data = image_data()
    blurred = gaussian_filter(textured_images(2), (0, 1.5, 1.5))
    return Data(data.reference, data.same, blurred, data.empty, data.with_nan)


@dataclass(frozen=True)
class Case:
    cls: type[Any]
    name: str
    params: dict[str, Any]  # valid, non-default values for the constructor check
    invalid: dict[str, Any]  # one parameter value the constructor must reject
    image: bool = False
    blur: bool = False  # shifted by blurring, not darkening

    def data(self) -> Data:
        if self.blur:
            return blurred_image_data()
        return image_data() if self.image else scalar_data()

    def __str__(self) -> str:
        return self.name


CASES = [
    Case(
        KLDivergenceDetector,
        "kl",
        {"bins": 20, "threshold": 0.5, "epsilon": 1e-5, "shared_edges": True},
        {"bins": 0},
    ),
    Case(PSIDetector, "psi", {"bins": 5, "threshold": 0.1}, {"threshold": -1.0}),
    Case(JensenShannonDetector, "js", {"bins": 30, "threshold": 0.3}, {"threshold": 2.0}),
    Case(KSDetector, "ks", {"alpha": 0.01}, {"alpha": 1.5}),
    Case(ADWINDetector, "adwin", {"delta": 0.01}, {"delta": 0.0}),
    Case(
        PageHinkleyDetector,
        "page_hinkley",
        {"min_instances": 10, "delta": 0.01, "threshold": 80.0, "alpha": 0.999, "mode": "up"},
        {"mode": "sideways"},
    ),
    Case(
        LuminanceDetector,
        "luminance",
        {"bins": 16, "threshold": 0.2, "dark_drop": 0.1, "fog_contrast_ratio": 0.5},
        {"bins": 1},
        image=True,
    ),
    Case(SharpnessDetector, "sharpness", {"threshold": 0.3}, {"threshold": 0.0}, blur=True),
]

each_detector = pytest.mark.parametrize("case", CASES, ids=str)


def init_params(cls: type[Any]) -> dict[str, inspect.Parameter]:
    signature = inspect.signature(cls.__init__)
    return {name: p for name, p in signature.parameters.items() if name != "self"}


def public_attributes(detector: object) -> set[str]:
    return {name for name in vars(detector) if not name.startswith("_")}


@each_detector
def test_name_is_the_entry_point_name(case: Case) -> None:
    assert isinstance(case.cls.name, str)
    assert case.cls.name == case.name
    entry_points = tomllib.loads(PYPROJECT.read_text())["project"]["entry-points"]
    registered = entry_points["harmonia.drift_detectors"]
    assert registered[case.name] == f"{case.cls.__module__}:{case.cls.__qualname__}"


@each_detector
def test_constructor_only_stores_parameters(case: Case) -> None:
    params = init_params(case.cls)
    assert set(case.params) == set(params), "the test's params must name every parameter"
    assert all(p.default is not inspect.Parameter.empty for p in params.values())

    default = case.cls()
    given = case.cls(**case.params)
    for name, parameter in params.items():
        assert getattr(default, name) == parameter.default
        assert getattr(given, name) == case.params[name]
    for detector in (default, given):
        # sklearn's check: no learned (trailing underscore) state before fit, and nothing
        # but the parameters (and the protocol's ``threshold``) set at all.
        assert not [name for name in public_attributes(detector) if name.endswith("_")]
        assert public_attributes(detector) <= set(params) | {"threshold"}
        assert isinstance(detector.threshold, int | float)
        assert isinstance(detector, DriftDetector)


@each_detector
def test_invalid_parameter_raises_value_error(case: Case) -> None:
    with pytest.raises(ValueError):
        case.cls(**case.invalid)


@each_detector
def test_score_before_fit_raises(case: Case) -> None:
    with pytest.raises(RuntimeError, match=r"fit\(\)"):
        case.cls().score(case.data().same)


@each_detector
def test_fit_returns_self(case: Case) -> None:
    detector = case.cls()
    assert detector.fit(case.data().reference) is detector


@each_detector
def test_same_distribution_is_not_drifted(case: Case) -> None:
    result = case.cls().fit(case.data().reference).score(case.data().same)
    assert isinstance(result, DriftScore)
    assert result.drifted is False


@each_detector
def test_shifted_window_is_drifted(case: Case) -> None:
    result = case.cls().fit(case.data().reference).score(case.data().shifted)
    assert result.drifted is True


@each_detector
@pytest.mark.parametrize("which", ["same", "shifted"])
def test_statistic_is_a_finite_float(case: Case, which: str) -> None:
    result = case.cls().fit(case.data().reference).score(getattr(case.data(), which))
    assert type(result.statistic) is float
    assert math.isfinite(result.statistic)
    assert isinstance(result.detail, dict)


@each_detector
def test_deterministic(case: Case) -> None:
    data = case.data()
    first = case.cls().fit(data.reference)
    second = case.cls().fit(data.reference)
    for window in (data.same, data.shifted):
        assert first.score(window) == second.score(window)


@each_detector
def test_empty_window_raises_value_error(case: Case) -> None:
    detector = case.cls().fit(case.data().reference)
    with pytest.raises(ValueError, match="empty"):
        detector.score(case.data().empty)


@each_detector
def test_nan_in_window_raises_value_error(case: Case) -> None:
    detector = case.cls().fit(case.data().reference)
    with pytest.raises(ValueError, match="NaN"):
        detector.score(case.data().with_nan)


@each_detector
def test_bad_reference_raises_value_error(case: Case) -> None:
    with pytest.raises(ValueError):
        case.cls().fit(case.data().empty)
    with pytest.raises(ValueError):
        case.cls().fit(case.data().with_nan)
