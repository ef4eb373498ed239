"""`Measured`: one timed, energy-metered block of inference, captured on the caller's thread.

This is the SDK's hot path, so it is a plain ``__slots__`` class used directly as the context
manager (no generator), it reads the clocks and the meter once each, and on exit it hands a
bare tuple to the probe's buffer; validation and JSON shaping happen on the sender thread.
For a counter-based meter that keeps the shared ``CounterMeter.measure`` (the estimate,
RAPL, NVML), it reads the counter directly: same joules, but without the generator and the
two reading objects per block, which cost more than the rest of the hot path together.
A failing meter costs the sample its energy figure, never the caller its inference.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from time import perf_counter
from types import TracebackType
from typing import TYPE_CHECKING, Any

from harmonia.energy import Measurement

if TYPE_CHECKING:
    from harmonia.sdk._probe import Probe


class Measured:
    """What the caller knows about one measured inference; returned by ``Probe.measure``.

    Set ``prediction``, ``target``, ``drift_value`` (numbers) and ``metrics`` (a dict of
    numbers) inside the block. After the block, ``latency_ms``, ``energy_j`` and
    ``energy_source`` hold what was measured. The sample is recorded even when the block
    raises: the time and energy were spent either way.
    """

    __slots__ = (
        "_context",
        "_metered",
        "_probe",
        "_start",
        "_t0",
        "drift_value",
        "energy_j",
        "energy_source",
        "latency_ms",
        "metrics",
        "model",
        "prediction",
        "target",
        "trace_id",
        "version",
    )

    def __init__(
        self, probe: Probe, model: str, version: int | None = None, trace_id: str | None = None
    ) -> None:
        self.model = model
        self.version = version
        self.trace_id = trace_id
        self.prediction: Any = None
        self.target: Any = None
        self.drift_value: Any = None
        self.metrics: dict[str, Any] = {}
        self.latency_ms: float | None = None
        self.energy_j: float | None = None
        self.energy_source: str | None = None
        self._probe = probe
        self._metered = False
        self._start: Any = None
        self._context: AbstractContextManager[Measurement] | None = None
        self._t0 = 0.0

    def __enter__(self) -> Measured:
        probe = self._probe
        counter = probe._counter
        try:
            if counter is not None:  # fast path: read the counter, skip the reading objects
                self._start = counter.read()
            else:
                context = probe.meter.measure()
                self._start = context.__enter__()
                self._context = context
            self._metered = True
        except Exception:
            probe._warn_once("meter", "energy meter failed to start; samples lack energy")
        self._t0 = perf_counter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.latency_ms = (perf_counter() - self._t0) * 1000.0
        probe = self._probe
        if self._metered:
            self._metered = False
            try:
                self._stop_meter(exc_type, exc, traceback)
            except Exception:
                probe._warn_once("meter", "energy meter failed to stop; samples lack energy")
        probe._enqueue(
            (
                self.model,
                self.version,
                probe.clock(),
                self.latency_ms,
                self.energy_j,
                self.energy_source,
                self.prediction,
                self.target,
                self.drift_value,
                self.metrics,
                self.trace_id,
            )
        )

    def _stop_meter(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Read the meter at the end of the block into ``energy_j``/``energy_source``."""
        counter = self._probe._counter
        if counter is not None:
            self.energy_j = counter.joules_between(self._start, counter.read())
            self.energy_source = counter.source
            return
        context, self._context = self._context, None
        if context is None:
            return
        context.__exit__(exc_type, exc, traceback)
        reading = self._start.reading
        if reading is not None:
            self.energy_j = reading.joules
            self.energy_source = reading.source
