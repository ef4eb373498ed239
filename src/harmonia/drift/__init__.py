"""Drift detectors: has the data a model sees moved away from what it was trained on?

Every detector follows the `DriftDetector` protocol (``fit(reference)``, then
``score(window) -> DriftScore``) and is registered under the ``harmonia.drift_detectors``
entry-point group by the name in its ``name`` class attribute.
"""

from harmonia.drift._protocol import DriftDetector, DriftScore
from harmonia.drift.histogram import (
    JensenShannonDetector,
    KLDivergenceDetector,
    PSIDetector,
    kl_divergence,
)
from harmonia.drift.ks import KSDetector
from harmonia.drift.luminance import LuminanceDetector
from harmonia.drift.sharpness import SharpnessDetector
from harmonia.drift.streaming import ADWINDetector, PageHinkleyDetector

__all__ = [
    "ADWINDetector",
    "DriftDetector",
    "DriftScore",
    "JensenShannonDetector",
    "KLDivergenceDetector",
    "KSDetector",
    "LuminanceDetector",
    "PSIDetector",
    "PageHinkleyDetector",
    "SharpnessDetector",
    "kl_divergence",
]
