"""`Probe`: what a managed ML system embeds to report telemetry and receive actions.

The probe splits the work in two so the system being managed never waits for the manager:
callers only append a tuple to a bounded buffer, and one daemon thread batches, converts,
sends and retries, then hands the server's actions to the `Effector` and reports how they
went. Everything that can fail (the network, the server, a handler) fails on that thread.
"""

from __future__ import annotations

import atexit
import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, TypeVar

from harmonia.energy import EnergyMeter, EstimateMeter
from harmonia.energy._protocol import CounterMeter
from harmonia.sdk._buffer import Item, SampleBuffer
from harmonia.sdk._effector import Effector
from harmonia.sdk._measured import Measured
from harmonia.sdk._messages import ActionMessage
from harmonia.sdk._stats import ProbeStats
from harmonia.sdk._transport import Transport, TransportError
from harmonia.sdk._wire import to_wire

logger = logging.getLogger("harmonia.sdk")

T = TypeVar("T")

MAX_BACKOFF = 30.0
"""Longest wait between two attempts, however many attempts are allowed."""

MAX_REASON = 2000
"""Longest action-result reason the server stores; longer ones are cut, not refused."""


class Probe:
    """Reports telemetry of one (app, instance, service) and applies the actions it gets back.

    Measure each inference with `measure` (latency and energy are filled in) or report one
    with `record`; samples are sent in batches of up to ``batch_size``, at least every
    ``flush_interval`` seconds, by a background thread. A buffer of ``max_buffer`` samples
    absorbs outages, evicting the oldest when full. Retryable failures are retried
    ``max_attempts`` times, waiting ``backoff`` seconds doubled each time; rejected batches
    are dropped. Actions in replies go to ``effector`` (see `Effector`) and their results
    back to the server. `stats` counts what happened. ``exit_timeout`` bounds how long the
    interpreter's exit waits for the last flush.

    >>> from harmonia.sdk import InMemoryTransport
    >>> received = []
    >>> def server(app, instance, samples):
    ...     received.extend(samples)
    ...     return {"accepted": len(samples), "actions": []}
    >>> with Probe("traffic", InMemoryTransport(server), instance="edge-1") as probe:
    ...     with probe.measure("lstm", version=3) as m:
    ...         m.prediction, m.metrics["confidence"] = 41.5, 0.9
    ...     probe.record("lstm", version=3, prediction=40.0, target=42.0)
    >>> [(s["model"], s["prediction"], s["energy_source"]) for s in received]
    [('lstm', 41.5, 'estimate'), ('lstm', 40.0, None)]
    >>> probe.stats.sent, probe.stats.batches
    (2, 1)
    """

    def __init__(
        self,
        app: str,
        transport: Transport,
        *,
        instance: str = "default",
        service: str = "default",
        meter: EnergyMeter | None = None,
        effector: Effector | None = None,
        batch_size: int = 1000,
        flush_interval: float = 1.0,
        max_buffer: int = 100_000,
        max_attempts: int = 5,
        backoff: float = 0.05,
        clock: Callable[[], float] = time.time,
        exit_timeout: float | None = 10.0,
    ) -> None:
        if batch_size < 1 or max_buffer < 1 or max_attempts < 1:
            raise ValueError("batch_size, max_buffer and max_attempts must be >= 1")
        if not flush_interval > 0 or backoff < 0:
            raise ValueError("flush_interval must be > 0 and backoff >= 0")
        self.app = app
        self.transport = transport
        self.instance = instance
        self.service = service
        self.meter: EnergyMeter = meter if meter is not None else EstimateMeter(scope="thread")
        self._counter = _counter_of(self.meter)
        self.effector = effector if effector is not None else Effector()
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.clock = clock
        self.exit_timeout = exit_timeout
        self.stats = ProbeStats()
        self._buffer = SampleBuffer(max_buffer, batch_size)
        self._closed = False
        self._warned: set[str] = set()
        # Flush handshake: a caller bumps ``_flush_requested`` and waits until the sender has
        # drained the buffer after seeing that request (``_flush_done``) or has stopped.
        self._control = threading.Condition()
        self._flush_requested = 0
        self._flush_done = 0
        self._stopping = False
        self._stopped = False
        self._thread = threading.Thread(
            target=self._run, name=f"harmonia-probe[{app}/{instance}]", daemon=True
        )
        self._thread.start()
        atexit.register(self._at_exit)

    # -- the caller's side ------------------------------------------------------------------

    def measure(self, model: str, version: int | None = None) -> Measured:
        """A context manager timing and metering one inference by ``model`` (``version``);
        set the outcome on the `Measured` it yields. One sample is recorded on exit.
        """
        return Measured(self, model, version)

    def record(
        self,
        model: str,
        *,
        version: int | None = None,
        prediction: float | None = None,
        target: float | None = None,
        drift_value: float | None = None,
        metrics: dict[str, float] | None = None,
        latency_ms: float | None = None,
        energy_j: float | None = None,
        energy_source: str | None = None,
        ts: float | None = None,
    ) -> None:
        """Record one sample directly: when ground truth arrives later, or when latency and
        energy were measured elsewhere. ``ts`` defaults to now (the probe's clock).
        """
        self._enqueue(
            (
                model,
                version,
                self.clock() if ts is None else ts,
                latency_ms,
                energy_j,
                energy_source,
                prediction,
                target,
                drift_value,
                metrics,
            )
        )

    def describe_version(
        self,
        model: str,
        version: int,
        *,
        fingerprint: Sequence[float] = (),
        details: dict[str, Any] | None = None,
    ) -> None:
        """Tell the server what a model version is, so its strategy can weigh reusing it:
        the ``fingerprint`` of its training data and ``details`` such as held-out quality,
        energy per inference and training cost. Sent now, from the calling thread (a rare
        call: after training, not per inference), retried like a batch.
        """
        description = {"fingerprint": [float(x) for x in fingerprint], "details": details or {}}
        self._with_retries(
            lambda: self.transport.describe_version(self.app, model, version, description)
        )

    def _enqueue(self, item: Item) -> None:
        """Hand a captured sample to the sender; never blocks beyond a short lock."""
        if self._closed:
            self.stats.add(dropped=1)
            self._warn_once("closed", "probe is closed; samples recorded now are dropped")
        elif self._buffer.put(item):
            self.stats.add(dropped=1)
            self._warn_once("overflow", "telemetry buffer full; dropping the oldest samples")

    def _warn_once(self, key: str, message: str) -> None:
        """Log a warning the first time ``key`` happens, so a hot path cannot flood the log;
        called from an ``except`` block, the warning carries the traceback.
        """
        if key not in self._warned:
            self._warned.add(key)
            logger.warning(
                "%s (app %s, instance %s)",
                message,
                self.app,
                self.instance,
                exc_info=sys.exc_info()[0] is not None,
            )

    # -- lifecycle ---------------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Send everything buffered now and wait until it is sent (or given up on).

        False when ``timeout`` seconds pass first; the samples are still sent later.
        """
        if threading.current_thread() is self._thread:  # from an action handler
            self._send_pending(everything=True)
            return True
        with self._control:
            if self._stopped:
                return len(self._buffer) == 0
            self._flush_requested += 1
            target = self._flush_requested
        self._buffer.ready.set()
        with self._control:
            return self._control.wait_for(
                lambda: self._flush_done >= target or self._stopped, timeout
            )

    def close(self, timeout: float | None = None) -> bool:
        """Flush, stop the sender and forget the exit hook. Samples recorded afterwards are
        dropped. False when ``timeout`` passed before the sender finished.
        """
        if not self._closed:
            self._closed = True
            atexit.unregister(self._at_exit)
            with self._control:
                self._stopping = True
            self._buffer.ready.set()
        if threading.current_thread() is self._thread:
            return False  # an action handler closed us: the loop stops after this batch
        self._thread.join(timeout)
        if self._thread.is_alive():
            logger.warning(
                "probe %s/%s: sender still busy after %s s; %d buffered samples may be lost",
                self.app,
                self.instance,
                timeout,
                len(self._buffer),
            )
            return False
        late = self._buffer.clear()  # recorded while closing, after the last drain
        if late:
            self.stats.add(dropped=late)
        return True

    @property
    def closed(self) -> bool:
        """Whether `close` was called (samples recorded now are dropped)."""
        return self._closed

    def __enter__(self) -> Probe:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _at_exit(self) -> None:
        self.close(self.exit_timeout)

    # -- the sender thread -------------------------------------------------------------------

    def _run(self) -> None:
        """Wake on a full batch, a flush, a close or the interval; send; repeat until closed."""
        ready = self._buffer.ready
        next_tick = time.monotonic() + self.flush_interval
        while True:
            wait = next_tick - time.monotonic()
            if wait > 0:
                ready.wait(wait)
            ready.clear()
            with self._control:
                requested = self._flush_requested
                stopping = self._stopping
            now = time.monotonic()
            due = now >= next_tick
            if due:
                next_tick = now + self.flush_interval
            try:
                self._send_pending(everything=due or stopping or requested > self._flush_done)
            except Exception:  # a bug must not silently end telemetry
                logger.exception("probe sender failed; continuing")
            if requested > self._flush_done:
                with self._control:
                    self._flush_done = requested
                    self._control.notify_all()
            if stopping:
                break
        with self._control:
            self._stopped = True
            self._control.notify_all()

    def _send_pending(self, *, everything: bool) -> None:
        """Send full batches; with ``everything``, also the rest of what is buffered now
        (but not what arrives meanwhile, so a busy caller cannot keep a flush going forever).
        """
        buffer = self._buffer
        remaining = len(buffer) if everything else 0
        while remaining > 0 or len(buffer) >= self.batch_size:
            batch = buffer.take(self.batch_size)
            if not batch:
                break
            remaining -= len(batch)
            self._deliver(batch)

    def _deliver(self, batch: list[Item]) -> None:
        """Convert, send (with retries) and act on the reply of one batch."""
        samples: list[dict[str, Any]] = []
        invalid: list[str] = []
        for item in batch:
            try:
                samples.append(to_wire(item, self.service))
            except Exception as error:  # ValueError, TypeError, OverflowError...: this sample
                invalid.append(f"{type(error).__name__}: {error}")
        if invalid:
            self.stats.add(dropped=len(invalid))
            logger.warning("dropped %d invalid samples; first: %s", len(invalid), invalid[0])
        if not samples:
            return
        count = len(samples)
        try:
            actions = self._with_retries(
                lambda: self.transport.send(self.app, self.instance, samples)
            )
        except TransportError as error:
            if error.retryable:
                self.stats.add(dropped=count)
                logger.error(
                    "dropped a batch of %d samples after %d attempts: %s",
                    count,
                    self.max_attempts,
                    error.message,
                )
            else:
                self.stats.add(rejected=count)
                logger.error("server rejected a batch of %d samples: %s", count, error.message)
            return
        except Exception:
            self.stats.add(dropped=count)
            logger.exception("transport failed unexpectedly; dropped a batch of %d", count)
            return
        self.stats.add(sent=count, batches=1)
        self._warned.discard("overflow")  # warn again if a later outage overflows the buffer
        for action in actions:
            self._apply(action)

    def _apply(self, action: ActionMessage) -> None:
        """Run the effector on ``action`` and report the outcome (``none`` actions are not)."""
        if action.kind == "none":
            return
        status, reason = self.effector.handle(action)
        reason = reason[:MAX_REASON]
        if status == "applied":
            self.stats.add(actions_applied=1)
        else:
            self.stats.add(actions_failed=1)
        logger.info(
            "action %d (%s %s) %s: %s", action.id, action.kind, action.model, status, reason
        )
        try:
            self._with_retries(lambda: self.transport.report(self.app, action.id, status, reason))
        except Exception as error:
            logger.warning("could not report the result of action %d: %s", action.id, error)

    def _with_retries(self, call: Callable[[], T]) -> T:
        """``call()``, retried with exponential backoff while it fails retryably; the last
        `TransportError` once ``max_attempts`` are spent or at the first non-retryable one.
        """
        attempt = 1
        while True:
            try:
                return call()
            except TransportError as error:
                if not error.retryable or attempt >= self.max_attempts:
                    raise
                delay = min(self.backoff * 2 ** (attempt - 1), MAX_BACKOFF)
                logger.warning(
                    "attempt %d/%d failed (%s); retrying in %.2f s",
                    attempt,
                    self.max_attempts,
                    error.message,
                    delay,
                )
                time.sleep(delay)
                attempt += 1


def _counter_of(meter: EnergyMeter) -> CounterMeter | None:
    """``meter`` when `Measured` may read its counter directly: it is a `CounterMeter` whose
    ``measure`` is the shared one, so reading ``read``/``joules_between`` is exactly what
    ``measure()`` would do. Any other meter goes through ``measure()``.
    """
    if isinstance(meter, CounterMeter) and type(meter).measure is CounterMeter.measure:
        return meter
    return None
