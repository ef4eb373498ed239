"""Observation agents: observers that watch an application's telemetry and say what they see.

A telemetry sample is a mapping with ``stage, service, instance, trace_id, model, ts,
latency_ms, energy_j, prediction, target, metrics{...}``. An `Observer` (a plugin in the
``harmonia.observers`` entry-point group) turns a `Window` of samples into an
`ObserverResult`: named numbers that policies and contracts read as
``observer.<name>.<field>``, the samples it flagged and a one-line explanation. An
`ObserverSpec` (YAML-friendly) configures one: which plugin, its parameters, the metric(s),
the scope, the window and when it runs. An `ObserverRunner` runs the configured observers of
each application: fed samples, it returns results when they are due, within bounds, and
contains an observer that fails.

>>> runner = ObserverRunner([ObserverSpec(name="lat", observer="summary", every={"samples": 3})])
>>> [o.result["mean"] for o in runner.feed("app", [{"latency_ms": v} for v in (1, 2, 3)])]
[2.0]
>>> runner.signals("app")["observer.lat.p50"]
2.0
"""

from harmonia.observation._protocol import (
    Observer,
    ObserverResult,
    Sample,
    Window,
    sample_value,
)
from harmonia.observation._runner import Observation, ObserverRunner, ObserverStats
from harmonia.observation._spec import (
    EverySpec,
    ObserversConfig,
    ObserverSpec,
    WindowSpec,
    load_observers_yaml,
    parse_observers,
)

__all__ = [
    "EverySpec",
    "Observation",
    "Observer",
    "ObserverResult",
    "ObserverRunner",
    "ObserverSpec",
    "ObserverStats",
    "ObserversConfig",
    "Sample",
    "Window",
    "WindowSpec",
    "load_observers_yaml",
    "parse_observers",
    "sample_value",
]
