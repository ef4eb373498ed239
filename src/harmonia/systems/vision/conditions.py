"""Name the drift a window of images shows: dark, fog, noise, blur, or none.

Two detectors, fitted on the clean training images: `SharpnessDetector` (noise and blur
keep the light but change the texture) and `LuminanceDetector` (HarmonE's: dark lowers the
mean luminance, fog flattens the contrast). A retrain asks this which drift to augment its
training images for, and how strong (the strength whose transform of clean images comes
closest to the window's statistics).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harmonia.drift import LuminanceDetector
from harmonia.drift.sharpness import SharpnessDetector, sharpness
from harmonia.systems.vision.data import Images
from harmonia.systems.vision.scenario import STRENGTH_RANGE, apply

#: HarmonE's thresholds, tuned to digit images (a dark background, a mean luminance of 0.33)
LUMINANCE_PARAMS: dict[str, Any] = {"threshold": 0.1, "dark_drop": 0.1, "fog_contrast_ratio": 0.6}
SHARPNESS_THRESHOLD = 0.2


@dataclass(frozen=True)
class Diagnosis:
    """What a window of images shows: the condition, an estimate of its strength, the facts."""

    condition: str  # dark, fog, noise, blur, shifted or none
    strength: float
    detail: dict[str, Any] = field(default_factory=dict)


class ConditionMonitor:
    """Fitted on clean reference images; `diagnose` names a window's drift and its strength."""

    def __init__(self, reference: Images, *, seed: int = 0) -> None:
        self.reference = reference
        self.seed = seed
        self.luminance = LuminanceDetector(**LUMINANCE_PARAMS).fit(reference)
        self.sharpness = SharpnessDetector(SHARPNESS_THRESHOLD).fit(reference)

    def diagnose(self, window: Images) -> Diagnosis:
        """The window's condition (texture first: noise and blur; then light: dark, fog)."""
        texture = self.sharpness.score(window)
        light = self.luminance.score(window)
        detail = {
            "luminance_js": light.statistic,
            "sharpness_log_ratio": texture.statistic,
            **{f"luminance.{k}": v for k, v in light.detail.items()},
            **{f"sharpness.{k}": v for k, v in texture.detail.items()},
        }
        condition = str(texture.detail["condition"])
        if condition == "none":
            condition = str(light.detail["condition"])
        strength = self.strength(condition, window) if condition in STRENGTH_RANGE else 0.0
        return Diagnosis(condition, strength, detail)

    def strength(self, condition: str, window: Images, steps: int = 24) -> float:
        """The strength whose transform of the reference best matches the window's statistic:
        mean luminance for dark, contrast for fog, sharpness for noise and blur."""
        low, high, _ = STRENGTH_RANGE[condition]
        sample = self.reference[:200]
        target = _statistic(condition, window)
        rng = np.random.default_rng(self.seed)
        candidates = np.linspace(low, high, steps + 2)[1:-1]
        errors = [
            abs(_statistic(condition, apply(condition, sample, float(s), rng)) - target)
            for s in candidates
        ]
        return float(candidates[int(np.argmin(errors))])


def _statistic(condition: str, images: Images) -> float:
    if condition == "dark":
        return float(np.mean(images))
    if condition == "fog":
        return float(images.reshape(len(images), -1).std(axis=1).mean())
    return float(sharpness(images).mean())
