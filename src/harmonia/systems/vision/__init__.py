"""The vision reference system: classify camera images with three model sizes under drift.

Digits from scikit-learn (bundled, no download), upscaled; a stream with camera drift
(dark, fog, noise, blur) placed by a scenario file; small, medium and large PyTorch
classifiers reporting class and confidence; retrains that fine-tune for the drift seen.
"""

from harmonia.systems.vision.conditions import ConditionMonitor, Diagnosis
from harmonia.systems.vision.models import MODEL_KINDS, VisionModel
from harmonia.systems.vision.scenario import (
    CONDITIONS,
    Drift,
    Scenario,
    ScenarioError,
    apply,
    load_scenario,
    parse_scenario,
)
from harmonia.systems.vision.system import Retrained, VisionSystem

__all__ = [
    "CONDITIONS",
    "MODEL_KINDS",
    "ConditionMonitor",
    "Diagnosis",
    "Drift",
    "Retrained",
    "Scenario",
    "ScenarioError",
    "VisionModel",
    "VisionSystem",
    "apply",
    "load_scenario",
    "parse_scenario",
]
