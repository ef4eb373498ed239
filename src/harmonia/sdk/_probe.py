"""`Probe`: what a managed ML system embeds to report telemetry and receive actions.

The probe splits the work in two so the system being managed never waits for the manager:
callers only append a tuple to a bounded buffer, and one daemon thread (`_Sender`, in
`harmonia.sdk._sender`) batches, converts, sends and retries, then hands the server's
actions to the `Effector` and reports how they went. Everything that can fail (the network,
the server, a handler) fails on that thread; this module is the callers' side.

An outage (a server restart, a redeployment, a partition) is waited out on that thread too,
for a time rather than a number of attempts, while the buffer, and the disk if a spool is
given, hold what arrives meanwhile; callers never notice.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

from harmonia.energy import EnergyMeter, EstimateMeter
from harmonia.energy._protocol import CounterMeter
from harmonia.sdk._buffer import Item
from harmonia.sdk._effector import Effector
from harmonia.sdk._measured import Measured
from harmonia.sdk._sender import _Sender
from harmonia.sdk._stats import ProbeStats
from harmonia.sdk._transport import Transport, accepts_keyword

logger = logging.getLogger("harmonia.sdk")

DESCRIBE_RETRY_FOR = 10.0
"""Longest `Probe.describe_version` retries (or ``retry_for`` if shorter): it runs on the
managed system's own thread, which must not wait out a whole outage."""

CLOSE_RESERVE = 1.0
"""Seconds of a `Probe.close` timeout (at most a fifth of it) left for spooling or counting
what could not be sent once the sender stops retrying, so the exit does not cut that short."""


class Probe:
    """Reports telemetry of one (app, instance, service) and applies the actions it gets back.

    Measure each inference with `measure` (latency and energy are filled in) or report one
    with `record`; samples are sent in batches of up to ``batch_size``, at least every
    ``flush_interval`` seconds, by a background thread. Each batch carries an idempotency
    key that its retries reuse, so a batch whose reply was lost is stored once.

    Outages: a batch that fails retryably (network error, 5xx, 408, 429) is retried, waiting
    ``backoff`` seconds doubled after each failure up to ``max_backoff``, jittered, until the
    server has not answered for ``retry_for`` seconds (counted from the first failure since
    its last answer, so a whole outage, not each batch, gets ``retry_for``). Meanwhile a
    buffer of ``max_buffer`` samples absorbs new ones, evicting the oldest when full. A batch
    given up on is dropped, or, with a ``spool_dir``, written there and sent once the server
    answers, oldest first, even by the next process given that directory; while a batch
    waits to be retried, full batches queued behind it go to the spool too, so a long outage
    costs disk (at most ``spool_max_bytes``, oldest deleted first), not samples. One spool
    directory per probe. A batch the server rejects (4xx) is dropped at once. Deprecated:
    ``max_attempts`` additionally gives up after that many attempts per batch.

    Every sample lost is counted in `stats` and logged. Actions in replies go to ``effector``
    (see `Effector`) and their results back to the server. ``exit_timeout`` bounds how long
    leaving a ``with`` block or the interpreter's exit waits for the last batches: when it
    runs out the probe stops retrying and spools (or drops) what is left. ``sleep`` and
    ``monotonic`` replace the waits between attempts and the clock ``retry_for`` is measured
    on (for tests: an injected ``sleep`` is not cut short by `close`).

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
        stage: str | None = None,
        meter: EnergyMeter | None = None,
        effector: Effector | None = None,
        batch_size: int = 1000,
        flush_interval: float = 1.0,
        max_buffer: int = 100_000,
        max_attempts: int | None = None,
        backoff: float = 0.05,
        max_backoff: float = 5.0,
        retry_for: float = 120.0,
        spool_dir: str | os.PathLike[str] | None = None,
        spool_max_bytes: int = 256 * 2**20,
        clock: Callable[[], float] = time.time,
        exit_timeout: float | None = 10.0,
        sleep: Callable[[float], None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        _check_options(batch_size, max_buffer, max_attempts, flush_interval, backoff, max_backoff)
        if retry_for < 0:
            raise ValueError("retry_for must be >= 0")
        self.app = app
        self.transport = transport
        self.instance = instance
        self.service = service
        self.stage = stage
        self.meter: EnergyMeter = meter if meter is not None else EstimateMeter(scope="thread")
        self._counter = _counter_of(self.meter)
        self.effector = effector if effector is not None else Effector()
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.retry_for = retry_for
        self.clock = clock
        self.exit_timeout = exit_timeout
        self.stats = ProbeStats()
        self._closed = False
        self._warned: set[str] = set()
        self._sender = _Sender(
            self,
            max_buffer=max_buffer,
            backoff=backoff,
            max_backoff=max_backoff,
            spool_dir=spool_dir,
            spool_max_bytes=spool_max_bytes,
            send_takes_key=_takes_idempotency_key(transport),
            sleep=sleep,
            monotonic=monotonic,
        )
        self._buffer = self._sender.buffer  # the hot path puts straight into it
        self._sender.start()
        atexit.register(self._at_exit)

    # -- the caller's side ------------------------------------------------------------------

    def measure(
        self, model: str, version: int | None = None, *, trace_id: str | None = None
    ) -> Measured:
        """A context manager timing and metering one inference by ``model`` (``version``);
        set the outcome on the `Measured` it yields. One sample is recorded on exit.
        ``trace_id`` names the request across the stages of a pipeline (see `trace_id_of`).
        """
        return Measured(self, model, version, trace_id)

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
        trace_id: str | None = None,
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
                trace_id,
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
        call: after training, not per inference), retried like a batch but for at most
        `DESCRIBE_RETRY_FOR` seconds, since the caller waits; then the `TransportError`.
        """
        description = {
            "service": self.service,
            "fingerprint": [float(x) for x in fingerprint],
            "details": details or {},
        }
        self._sender.with_retries(
            lambda: self.transport.describe_version(self.app, model, version, description),
            retry_for=min(self.retry_for, DESCRIBE_RETRY_FOR),
            pause=self._sender.pause_caller,
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
        return self._sender.flush(timeout)

    def close(self, timeout: float | None = None) -> bool:
        """Flush, stop the sender and forget the exit hook. Samples recorded afterwards are
        dropped. False when ``timeout`` passed before the sender finished.

        During an outage, the sender stops retrying shortly before ``timeout`` runs out and
        spools what it could not send (or drops it, counted), so closing takes ``timeout``,
        not ``retry_for``. Without a timeout, close waits until everything is sent or given
        up: at most ``retry_for`` into an outage (plus the attempts in flight).
        """
        if timeout is not None:
            self._sender.give_up_by(time.monotonic() + timeout - min(CLOSE_RESERVE, timeout / 5))
        if not self._closed:
            self._closed = True
            atexit.unregister(self._at_exit)
            self._sender.stop()
        return self._sender.join(timeout)

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
        self.close(self.exit_timeout)

    def _at_exit(self) -> None:
        self.close(self.exit_timeout)


def _check_options(
    batch_size: int,
    max_buffer: int,
    max_attempts: int | None,
    flush_interval: float,
    backoff: float,
    max_backoff: float,
) -> None:
    """Refuse options the probe cannot work with; warn that ``max_attempts`` is deprecated."""
    if batch_size < 1 or max_buffer < 1 or (max_attempts is not None and max_attempts < 1):
        raise ValueError("batch_size, max_buffer and max_attempts must be >= 1")
    if not (flush_interval > 0 and backoff > 0 and max_backoff > 0):
        raise ValueError("flush_interval, backoff and max_backoff must be > 0")
    if max_attempts is not None:
        warnings.warn(
            "Probe(max_attempts=...) is deprecated: an outage is ridden out for retry_for "
            "seconds, whatever the number of attempts",
            DeprecationWarning,
            stacklevel=3,
        )


def _takes_idempotency_key(transport: Transport) -> bool:
    """Whether ``transport.send`` takes ``idempotency_key``; warns when it does not, since
    its retried batches may then be stored twice."""
    if accepts_keyword(transport.send, "idempotency_key"):
        return True
    warnings.warn(
        f"{type(transport).__name__}.send does not accept idempotency_key: a batch whose "
        "reply is lost may be stored twice when retried (see harmonia.sdk.Transport)",
        DeprecationWarning,
        stacklevel=3,
    )
    return False


def _counter_of(meter: EnergyMeter) -> CounterMeter | None:
    """``meter`` when `Measured` may read its counter directly: it is a `CounterMeter` whose
    ``measure`` is the shared one, so reading ``read``/``joules_between`` is exactly what
    ``measure()`` would do. Any other meter goes through ``measure()``.
    """
    if isinstance(meter, CounterMeter) and type(meter).measure is CounterMeter.measure:
        return meter
    return None
