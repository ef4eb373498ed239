"""The conformance checks of an observer (entry-point group ``harmonia.observers``).

An observer is checked on a `LatencyStream` (synthetic telemetry of two stages joined by
``trace_id``, with a few latency spikes) read through the metrics ``latency_ms`` and
``energy_j``, and on an empty window and windows of samples that lack the metrics.
"""

from __future__ import annotations

import copy
import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, partial
from typing import Any

import numpy as np

from harmonia.observation import Observer, ObserverResult, Window
from harmonia.observation._protocol import FIELD_NAME
from harmonia.plugins import OBSERVERS, load_plugin
from harmonia.testing._check import Check, check_registered, plugin_label, raises, run_all


@dataclass(frozen=True)
class LatencyStream:
    """Synthetic telemetry: ``samples`` in arrival order and the indices of the injected
    latency spikes (``anomalies``)."""

    samples: tuple[dict[str, Any], ...]
    anomalies: frozenset[int]


@cache
def latency_stream(
    n: int = 400, *, seed: int = 0, spikes: float = 0.02, factor: tuple[float, float] = (4, 8)
) -> LatencyStream:
    """``n`` samples alternating between stages ``pre`` and ``model`` (two per trace), latency
    lognormal around 20 ms (``model``) and 5 ms (``pre``), energy following latency; a fraction
    ``spikes`` of them have their latency multiplied by a factor drawn from ``factor``."""
    rng = np.random.default_rng(seed)
    stages = np.array(["pre", "model"])[np.arange(n) % 2]
    base = np.where(stages == "model", 20.0, 5.0)
    latency = base * rng.lognormal(0.0, 0.15, n)
    hit = rng.random(n) < spikes
    latency[hit] *= rng.uniform(factor[0], factor[1], int(hit.sum()))
    energy = latency * 0.05 + rng.normal(0.0, 0.02, n)
    samples = tuple(
        {
            "stage": str(stages[i]),
            "service": f"{stages[i]}-svc",
            "instance": "i-0",
            "trace_id": f"t{i // 2}",
            "model": "m",
            "ts": 1_700_000_000.0 + i * 0.01,
            "latency_ms": float(latency[i]),
            "energy_j": float(energy[i]),
            "prediction": 0.0,
            "target": 0.0,
            "metrics": {"queue": float(i % 7)},
        }
        for i in range(n)
    )
    return LatencyStream(samples, frozenset(np.flatnonzero(hit).tolist()))


Factory = type[Any] | Callable[..., Observer]
Metrics = tuple[str, ...]


def _window(samples: Sequence[Mapping[str, Any]], metrics: Metrics) -> Window:
    return Window(list(samples), metrics)


def _check_result(result: object, size: int) -> ObserverResult:
    assert isinstance(result, ObserverResult), f"observe() returned {type(result).__name__}"
    assert result.error is None, f"a result with an error: {result.error}"
    for key, value in result.values.items():
        assert isinstance(key, str) and FIELD_NAME.match(key), f"field name {key!r}"
        assert type(value) is float, f"field {key}: {type(value).__name__}, not float"
        assert math.isfinite(value), f"field {key} is {value}"
    flagged = result.flagged
    assert list(flagged) == sorted(set(flagged)), f"flagged not sorted and distinct: {flagged}"
    assert all(0 <= i < size for i in flagged), f"flagged outside a window of {size}: {flagged}"
    assert len(result.flagged_ts) == len(flagged), "flagged_ts and flagged differ in length"
    line = result.explanation
    assert isinstance(line, str) and line and "\n" not in line, f"explanation {line!r}"
    return result


# -- the checks --------------------------------------------------------------------------------
def _is_an_observer(cls: Factory) -> None:
    observer = cls()
    assert isinstance(observer, Observer), f"{observer!r} does not satisfy Observer"
    assert isinstance(getattr(cls, "name", None), str), "no string class attribute 'name'"
    assert isinstance(getattr(cls, "streaming", None), bool), "no bool class attr 'streaming'"


def _constructor_only_stores_parameters(cls: Factory, params: Mapping[str, Any] | None) -> None:
    signature = dict(inspect.signature(cls).parameters)
    no_default = [n for n, p in signature.items() if p.default is inspect.Parameter.empty]
    assert not no_default, f"parameters without a default: {no_default}"
    if params is not None:
        assert set(params) == set(signature), (
            f"params given {sorted(params)} must name every constructor parameter "
            f"{sorted(signature)}"
        )
    built = [(cls(), {n: p.default for n, p in signature.items()})]
    if params is not None:
        built.append((cls(**params), dict(params)))
    for observer, expected in built:
        for name, value in expected.items():
            stored = getattr(observer, name)
            assert stored == value, f"parameter {name}: stored {stored!r}, given {value!r}"
        public = {n for n in vars(observer) if not n.startswith("_")}
        learned = [n for n in public if n.endswith("_")]
        assert not learned, f"learned state {learned} before observing"
        extra = public - set(signature)
        assert not extra, f"the constructor sets more than its parameters: {sorted(extra)}"


def _invalid_parameter_raises_value_error(
    cls: Factory, invalid: Mapping[str, Any], data: LatencyStream, metrics: Metrics
) -> None:
    with raises(ValueError):
        cls(**invalid).observe(_window(data.samples, metrics))


def _observe_returns_a_result(cls: Factory, data: LatencyStream, metrics: Metrics) -> None:
    for size in (len(data.samples), 50, 1):
        _check_result(cls().observe(_window(data.samples[:size], metrics)), size)


def _takes_windows_one_after_another(cls: Factory, data: LatencyStream, metrics: Metrics) -> None:
    observer = cls()
    for start in range(0, len(data.samples), 100):
        part = data.samples[start : start + 100]
        _check_result(observer.observe(_window(part, metrics)), len(part))


def _empty_window_gives_a_result(cls: Factory, data: LatencyStream, metrics: Metrics) -> None:
    result = _check_result(cls().observe(_window([], metrics)), 0)
    assert result.flagged == (), "flagged samples in an empty window"


def _samples_without_the_metrics_are_skipped(
    cls: Factory, data: LatencyStream, metrics: Metrics
) -> None:
    bare = [{"stage": s["stage"], "trace_id": s["trace_id"], "ts": s["ts"]} for s in data.samples]
    result = _check_result(cls().observe(_window(bare, metrics)), len(bare))
    assert result.flagged == (), "flagged samples that carry none of the metrics"
    mixed = [s if i % 3 else bare[i] for i, s in enumerate(data.samples)]
    result = _check_result(cls().observe(_window(mixed, metrics)), len(mixed))
    lacking = [i for i in result.flagged if i % 3 == 0]
    assert not lacking, f"flagged samples without the metrics: {lacking}"


def _deterministic(cls: Factory, data: LatencyStream, metrics: Metrics) -> None:
    first, second = cls(), cls()
    for start in (0, 200):
        window = _window(data.samples[start : start + 200], metrics)
        assert first.observe(window) == second.observe(window), "two instances disagree"


def _window_is_not_changed(cls: Factory, data: LatencyStream, metrics: Metrics) -> None:
    samples = [copy.deepcopy(s) for s in data.samples]
    cls().observe(_window(samples, metrics))
    assert samples == list(data.samples), "observe() changed the samples it was given"


_ON_DATA = [
    _observe_returns_a_result,
    _takes_windows_one_after_another,
    _empty_window_gives_a_result,
    _samples_without_the_metrics_are_skipped,
    _deterministic,
    _window_is_not_changed,
]


def observer_checks(
    observer: str | Factory,
    *,
    params: Mapping[str, Any] | None = None,
    invalid: Mapping[str, Any] | None = None,
    metrics: Sequence[str] = ("latency_ms", "energy_j"),
    data: LatencyStream | Callable[[], LatencyStream] = latency_stream,
) -> list[Check]:
    """Every conformance check of one observer, each a `Check` to call.

    ``observer``: a name registered under ``harmonia.observers``, or the class (its
    registration is checked only when it is looked up by name or has a ``name`` found in the
    group). ``params``: valid, non-default values of every constructor parameter;
    ``invalid``: parameters with which ``observe`` (or the constructor) must raise ValueError;
    ``metrics``: what the windows watch; ``data``: a `LatencyStream`, or a function making one.
    """
    looked_up = observer if isinstance(observer, str) else None
    cls: Factory = observer if not isinstance(observer, str) else load_plugin(OBSERVERS, observer)
    label = plugin_label(observer)
    names = tuple(metrics)
    stream = data if isinstance(data, LatencyStream) else data()
    checks = []
    if looked_up is not None:
        checks.append(
            Check(
                label,
                "registered_under_its_own_name",
                partial(check_registered, OBSERVERS, cls, looked_up),
            )
        )
    checks += [
        Check(label, "is_an_observer", partial(_is_an_observer, cls)),
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
                partial(_invalid_parameter_raises_value_error, cls, invalid, stream, names),
            )
        )
    checks += [
        Check(label, c.__name__.lstrip("_"), partial(c, cls, stream, names)) for c in _ON_DATA
    ]
    return checks


def check_observer(
    observer: str | Factory,
    *,
    params: Mapping[str, Any] | None = None,
    invalid: Mapping[str, Any] | None = None,
    metrics: Sequence[str] = ("latency_ms", "energy_j"),
    data: LatencyStream | Callable[[], LatencyStream] = latency_stream,
) -> None:
    """Run every conformance check on one observer; the first failure raises an
    `AssertionError` naming the observer and the check. Arguments as `observer_checks`."""
    run_all(observer_checks(observer, params=params, invalid=invalid, metrics=metrics, data=data))
