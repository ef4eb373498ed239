"""Harmonia: a self-adaptive, energy-aware control plane for machine-learning services.

The pure core (policies, conditions, the engine, strategies) is imported eagerly; energy
meters, drift detectors, placers and policy files load on first use, so that a managed system that
only needs a few names does not pay for scipy and river at import time.
"""

from importlib import import_module
from typing import Any

from harmonia.core import *  # noqa: F403 - the core's public API is Harmonia's
from harmonia.core import __all__ as _core_all

__version__ = "0.1.0"

_LAZY = {
    "harmonia.energy": [
        "EnergyMeter",
        "EnergyReading",
        "EstimateMeter",
        "Measurement",
        "NvmlMeter",
        "PowercapMeter",
        "auto_meter",
        "get_meter",
        "measure_per_call",
    ],
    "harmonia.drift": [
        "ADWINDetector",
        "JensenShannonDetector",
        "KLDivergenceDetector",
        "KSDetector",
        "LuminanceDetector",
        "PSIDetector",
        "PageHinkleyDetector",
    ],
    "harmonia.policies": [
        "build_engine",
        "dump_policy",
        "load_policy",
        "parse_policy_text",
        "presets",
    ],
    "harmonia.orchestration": [
        "BestFitPlacer",
        "FirstFitPlacer",
        "InventoryError",
        "Node",
        "OptimalPlacer",
        "Placement",
        "Placer",
        "Plan",
        "ServiceRequirement",
        "Unplaced",
        "WorstFitPlacer",
    ],
    "harmonia.orchestration.loaders": ["load_nodes", "load_services"],
    "harmonia.sdk": [
        "AMQPTransport",
        "ActionMessage",
        "Effector",
        "HTTPTransport",
        "InMemoryTransport",
        "MQTTTransport",
        "Probe",
        "Transport",
        "TransportError",
        "new_trace_id",
        "trace_id_of",
        "traceparent",
    ],
}
_HOME = {name: module for module, names in _LAZY.items() for name in names}

__all__ = [*_core_all, *_HOME, "__version__"]


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'harmonia' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
