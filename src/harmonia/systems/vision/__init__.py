"""The vision reference system: classify camera images with three model sizes under drift.

Digits from scikit-learn (bundled, no download), upscaled; a stream with camera drift
(dark, fog, noise, blur) placed by a scenario file; small, medium and large PyTorch
classifiers reporting class and confidence; retrains that fine-tune for the drift seen.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

from harmonia.systems import ReferenceSystem

if TYPE_CHECKING:
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

#: registered under ``harmonia.systems`` as ``vision``
SYSTEM = ReferenceSystem(
    name="vision",
    summary="classify camera images under drift (small, medium and large CNNs)",
    models=("small", "medium", "large"),
    unit="images",
    data_help="a scenario file (default: the shipped scenarios/default.yaml)",
    replay="harmonia.replay.systems:VISION",
    live="harmonia.systems.vision.live:run",
)

# The rest loads on first use: the entry point above must import without torch.
_HOME = {
    "ConditionMonitor": "conditions",
    "Diagnosis": "conditions",
    "MODEL_KINDS": "models",
    "VisionModel": "models",
    "CONDITIONS": "scenario",
    "Drift": "scenario",
    "Scenario": "scenario",
    "ScenarioError": "scenario",
    "apply": "scenario",
    "load_scenario": "scenario",
    "parse_scenario": "scenario",
    "Retrained": "system",
    "VisionSystem": "system",
}


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{module}"), name)


__all__ = [
    "CONDITIONS",
    "MODEL_KINDS",
    "SYSTEM",
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
