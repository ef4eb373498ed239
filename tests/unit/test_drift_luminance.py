"""Luminance detector: tells dark from fog, reads RGB and 0..255 input alike."""

from __future__ import annotations

import numpy as np
import pytest

from harmonia.drift import LuminanceDetector
from harmonia.drift.luminance import luminance
from harmonia.testing import textured_images


def as_rgb(gray: np.ndarray) -> np.ndarray:
    """Colour images, tinted red, whose BT.601 luminance is still ``gray``."""
    tint = 0.1 * gray * (1.0 - gray)  # keeps every channel inside [0, 1]
    red = gray + tint
    green = gray - tint * 0.299 / 0.587  # 0.299 * tint - 0.587 * (tint * 0.299 / 0.587) = 0
    return np.stack([red, green, gray], axis=-1)


@pytest.fixture(scope="module")
def detector() -> LuminanceDetector:
    return LuminanceDetector().fit(textured_images(0))


def test_unchanged_images_are_not_drifted(detector: LuminanceDetector) -> None:
    result = detector.score(textured_images(1))
    assert not result.drifted
    assert result.detail["condition"] == "none"
    assert result.detail["mean_luminance"] == pytest.approx(0.5, abs=0.02)


def test_darkened_images_are_dark(detector: LuminanceDetector) -> None:
    result = detector.score(textured_images(1) * 0.3)
    assert result.drifted
    assert result.detail["condition"] == "dark"
    assert result.detail["mean_luminance"] < result.detail["reference_mean_luminance"] - 0.15


def test_fogged_images_are_fog(detector: LuminanceDetector) -> None:
    result = detector.score(textured_images(1) * 0.3 + 0.6)
    assert result.drifted
    assert result.detail["condition"] == "fog"
    assert result.detail["mean_luminance"] > result.detail["reference_mean_luminance"]
    assert result.detail["contrast"] < 0.6 * result.detail["reference_contrast"]


def test_other_drift_is_shifted(detector: LuminanceDetector) -> None:
    # Brighter with the same contrast: neither dark nor fog.
    result = detector.score(np.clip(textured_images(1) + 0.3, 0.0, 1.0))
    assert result.drifted
    assert result.detail["condition"] == "shifted"


def test_rgb_works_like_grayscale() -> None:
    gray_reference, gray_window = textured_images(0), textured_images(1) * 0.3
    rgb_reference, rgb_window = as_rgb(gray_reference), as_rgb(gray_window)
    assert rgb_reference.shape == (16, 24, 24, 3)
    np.testing.assert_allclose(luminance(rgb_reference), gray_reference, atol=1e-9)
    gray = LuminanceDetector().fit(gray_reference).score(gray_window)
    rgb = LuminanceDetector().fit(rgb_reference).score(rgb_window)
    assert rgb.drifted == gray.drifted
    assert rgb.detail["condition"] == gray.detail["condition"] == "dark"
    assert rgb.statistic == pytest.approx(gray.statistic, abs=1e-6)


def test_uint8_matches_unit_floats() -> None:
    reference_u8 = np.round(textured_images(0) * 255).astype(np.uint8)
    window_u8 = np.round(textured_images(1) * 0.3 * 255).astype(np.uint8)
    from_u8 = LuminanceDetector().fit(reference_u8).score(window_u8)
    from_float = LuminanceDetector().fit(reference_u8 / 255.0).score(window_u8 / 255.0)
    assert from_u8.drifted == from_float.drifted
    assert from_u8.detail["condition"] == from_float.detail["condition"] == "dark"
    assert from_u8.statistic == pytest.approx(from_float.statistic, abs=1e-12)
    for key in ("mean_luminance", "contrast", "reference_mean_luminance", "reference_contrast"):
        assert from_u8.detail[key] == pytest.approx(from_float.detail[key], abs=1e-12)
    # Floats in 0..255 are read as 0..255 too.
    from_float255 = LuminanceDetector().fit(reference_u8.astype(float)).score(window_u8 * 1.0)
    assert from_float255.statistic == pytest.approx(from_float.statistic, abs=1e-12)


def test_shapes() -> None:
    gray = textured_images(0, n=2)
    assert luminance(gray).shape == (2, 24, 24)
    assert luminance(gray[0]).shape == (1, 24, 24)  # one grayscale image
    assert luminance(as_rgb(gray)[0]).shape == (1, 24, 24)  # (h, w, 3): one RGB image
    assert luminance(gray[..., np.newaxis]).shape == (2, 24, 24)  # (n, h, w, 1)
    assert luminance(np.zeros((5, 4, 3))).shape == (1, 5, 4)  # ambiguous: one RGB image
    assert luminance(np.zeros((5, 4, 3, 1))).shape == (5, 4, 3)  # grayscale batch, explicit
    with pytest.raises(ValueError, match="shaped"):
        luminance(np.zeros(10))
    with pytest.raises(ValueError, match="shaped"):
        luminance(np.zeros((2, 4, 4, 2)))


@pytest.mark.parametrize(
    "bad",
    [np.full((1, 4, 4), -0.1), np.full((1, 4, 4), 300.0), np.array([["a", "b"]])],
)
def test_out_of_range_or_non_numeric_raises(bad: np.ndarray) -> None:
    with pytest.raises(ValueError):
        luminance(bad)
