"""The `Observer` protocol, the `Window` it reads and the `ObserverResult` it returns."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

Sample = Mapping[str, Any]

#: the telemetry fields read from the top level of a sample; any other metric name is looked
#: up in its ``metrics`` mapping (``metrics.<name>`` says so explicitly)
TOP_LEVEL = frozenset({"latency_ms", "energy_j", "prediction", "target", "ts"})
FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def sample_value(sample: Sample, metric: str) -> float:
    """The value of ``metric`` in one sample as a float; NaN when absent or not a number."""
    if metric.startswith("metrics."):
        value = _nested(sample, metric.removeprefix("metrics."))
    elif metric in TOP_LEVEL:
        value = sample.get(metric)
    else:
        value = _nested(sample, metric)
        if value is None:
            value = sample.get(metric)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    return float(value)


def _nested(sample: Sample, metric: str) -> Any:
    metrics = sample.get("metrics")
    return metrics.get(metric) if isinstance(metrics, Mapping) else None


@dataclass(frozen=True)
class Window:
    """The samples one observer run sees, in arrival order, and the metric(s) it watches.

    Window observers get the configured window (the last N samples, or the last T seconds);
    streaming observers get the samples that arrived since their previous run.
    """

    samples: Sequence[Sample]
    metrics: tuple[str, ...] = ("latency_ms",)

    def __len__(self) -> int:
        return len(self.samples)

    def values(self, metric: str | None = None) -> np.ndarray:
        """One metric (default: the first) over every sample; NaN where a sample lacks it."""
        name = self.metrics[0] if metric is None else metric
        return np.array([sample_value(s, name) for s in self.samples], dtype=float)

    def matrix(self, metrics: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(X, rows)``: the metrics as columns, only over the samples that carry all of them
        as finite numbers, and the indices in the window of those samples."""
        names = self.metrics if metrics is None else tuple(metrics)
        columns = [self.values(name) for name in names]
        if not self.samples:
            return np.empty((0, len(names))), np.empty(0, dtype=int)
        x = np.column_stack(columns)
        complete = np.all(np.isfinite(x), axis=1)
        return x[complete], np.flatnonzero(complete)

    def timestamps(self) -> np.ndarray:
        return self.values("ts")

    def result(
        self,
        values: Mapping[str, float],
        flagged: Iterable[int] = (),
        explanation: str = "",
    ) -> ObserverResult:
        """An `ObserverResult` whose flagged indices (into this window) carry their ``ts``."""
        indices = tuple(sorted({int(i) for i in flagged}))
        ts = self.timestamps()
        return ObserverResult(
            values={k: float(v) for k, v in values.items()},
            flagged=indices,
            flagged_ts=tuple(float(ts[i]) for i in indices),
            explanation=explanation,
        )


@dataclass(frozen=True)
class ObserverResult:
    """What one observer run found.

    ``values``: named numbers (``score``, ``anomalies``, ``fraction``, ...), each read by a
    policy or a contract as ``observer.<name>.<field>``; ``flagged``: indices into the window of
    the samples found anomalous, and ``flagged_ts`` their timestamps; ``explanation``: one line
    for a person; ``error``: set (and ``values`` empty) when the observer raised.
    """

    values: Mapping[str, float] = field(default_factory=dict)
    flagged: tuple[int, ...] = ()
    flagged_ts: tuple[float, ...] = ()
    explanation: str = ""
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def __getitem__(self, name: str) -> float:
        return self.values[name]

    def signals(self, name: str) -> dict[str, float]:
        """``{"observer.<name>.<field>": value}`` for every value."""
        return {f"observer.{name}.{key}": value for key, value in self.values.items()}

    @classmethod
    def failed(cls, error: BaseException) -> ObserverResult:
        message = f"{type(error).__name__}: {error}".splitlines()[0][:500]
        return cls(explanation=f"observer failed: {message}", error=message)


@runtime_checkable
class Observer(Protocol):
    """Watches telemetry and says what it sees, as numbers.

    scikit-learn style: the constructor only stores its parameters (every one with a
    default); state learned while observing ends in ``_``. ``observe(window)`` returns an
    `ObserverResult`. A window observer (``streaming = False``) looks at the whole window each
    time and keeps no state between calls; a streaming observer (``streaming = True``) is given
    each sample once, in order, and keeps its state across calls, as a stream detector must.
    An empty window, or samples that lack the metric, give a result, not an error.
    """

    name: ClassVar[str]
    streaming: ClassVar[bool]

    def observe(self, window: Window) -> ObserverResult:
        """What this observer sees in ``window``."""
        ...
