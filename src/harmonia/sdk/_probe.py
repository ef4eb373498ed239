"""`Probe`: what a managed ML system embeds to report telemetry and receive actions.

The probe splits the work in two so the system being managed never waits for the manager:
callers only append a tuple to a bounded buffer, and one daemon thread batches, converts,
sends and retries, then hands the server's actions to the `Effector` and reports how they
went. Everything that can fail (the network, the server, a handler) fails on that thread.

An outage (a server restart, a redeployment, a partition) is waited out on that thread too,
for a time rather than a number of attempts, while the buffer, and the disk if a spool is
given, hold what arrives meanwhile; callers never notice.
"""

from __future__ import annotations

import atexit
import itertools
import logging
import os
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from harmonia.energy import EnergyMeter, EstimateMeter
from harmonia.energy._protocol import CounterMeter
from harmonia.sdk._buffer import Item, SampleBuffer
from harmonia.sdk._effector import Effector
from harmonia.sdk._measured import Measured
from harmonia.sdk._messages import ActionMessage
from harmonia.sdk._retry import Backoff, Outage
from harmonia.sdk._spool import Spool
from harmonia.sdk._stats import ProbeStats
from harmonia.sdk._transport import Transport, TransportError, accepts_keyword
from harmonia.sdk._wire import Batch, to_wire

logger = logging.getLogger("harmonia.sdk")

T = TypeVar("T")

DESCRIBE_RETRY_FOR = 10.0
"""Longest `Probe.describe_version` retries (or ``retry_for`` if shorter): it runs on the
managed system's own thread, which must not wait out a whole outage."""

CLOSE_RESERVE = 1.0
"""Seconds of a `Probe.close` timeout (at most a fifth of it) left for spooling or counting
what could not be sent once the sender stops retrying, so the exit does not cut that short."""

SPILL_EVERY = 0.25
"""While the sender waits to retry, how often it moves the batches queued behind to the
spool, so that a fast producer does not overflow the buffer during a long wait."""

MAX_REASON = 2000
"""Longest action-result reason the server stores; longer ones are cut, not refused."""


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
        self._buffer = SampleBuffer(max_buffer, batch_size)
        self._closed = False
        self._warned: set[str] = set()
        self._send_takes_key = _takes_idempotency_key(transport)
        self._backoff = Backoff(backoff, max_backoff)
        self._sleep = sleep
        self._monotonic = monotonic
        self._outage = Outage()
        self._spool = (
            Spool(Path(spool_dir), spool_max_bytes, self._spool_lost)
            if spool_dir is not None
            else None
        )
        # Batches are numbered as they are formed, after any a previous run left in the
        # spool, so that spooled batches are sent in the order they were recorded.
        self._seqs = itertools.count(self._spool.next_seq if self._spool is not None else 0)
        self._in_flight: int | None = None  # the batch being sent: never evicted from the spool
        # ``close(timeout)`` sets when the sender stops retrying (time.monotonic) and wakes
        # it from a wait between attempts, so an exit during an outage takes the timeout.
        self._give_up_at: float | None = None
        self._wake = threading.Event()
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
        if self._spool is not None and len(self._spool):
            self._buffer.ready.set()  # a previous run's batches: send them without waiting
        self._thread.start()
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
        self._with_retries(
            lambda: self.transport.describe_version(self.app, model, version, description),
            retry_for=min(self.retry_for, DESCRIBE_RETRY_FOR),
            pause=self._sleep or time.sleep,
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

        During an outage, the sender stops retrying shortly before ``timeout`` runs out and
        spools what it could not send (or drops it, counted), so closing takes ``timeout``,
        not ``retry_for``. Without a timeout, close waits until everything is sent or given
        up: at most ``retry_for`` into an outage (plus the attempts in flight).
        """
        if timeout is not None:
            self._give_up_by(time.monotonic() + timeout - min(CLOSE_RESERVE, timeout / 5))
        if not self._closed:
            self._closed = True
            atexit.unregister(self._at_exit)
            with self._control:
                self._stopping = True
            self._buffer.ready.set()
            self._wake.set()
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

    def _give_up_by(self, deadline: float) -> None:
        """Make the sender stop retrying at ``deadline`` (`time.monotonic`), or sooner."""
        with self._control:
            if self._give_up_at is None or deadline < self._give_up_at:
                self._give_up_at = deadline
        self._wake.set()

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
                finished = self._send_pending(
                    everything=due or stopping or requested > self._flush_done
                )
                if stopping and not finished:
                    self._set_aside_rest()
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

    def _send_pending(self, *, everything: bool) -> bool:
        """Send what the spool holds, oldest first, then full batches from the buffer; with
        ``everything``, also the rest of what is buffered now (but not what arrives
        meanwhile, so a busy caller cannot keep a flush going forever). False when the pass
        stopped early: the probe is closing and the server does not answer.
        """
        buffer = self._buffer
        remaining = len(buffer) if everything else 0
        while not self._past_deadline():
            batch = self._spool.oldest() if self._spool is not None else None
            if batch is None:
                if remaining <= 0 and len(buffer) < self.batch_size:
                    return True
                items = buffer.take(self.batch_size)
                if not items:
                    return True
                remaining -= len(items)
                batch = self._form(items)
                if batch is None:
                    continue
            if not self._deliver(batch):
                return False
        return False

    def _form(self, items: list[Item]) -> Batch | None:
        """The wire batch of ``items`` under a new idempotency key; invalid samples are
        dropped alone (counted). None when no sample was valid."""
        samples: list[dict[str, Any]] = []
        invalid: list[str] = []
        for item in items:
            try:
                samples.append(to_wire(item, self.service, self.stage))
            except Exception as error:  # ValueError, TypeError, OverflowError...: this sample
                invalid.append(f"{type(error).__name__}: {error}")
        if invalid:
            self.stats.add(dropped=len(invalid))
            logger.warning("dropped %d invalid samples; first: %s", len(invalid), invalid[0])
        if not samples:
            return None
        return Batch(next(self._seqs), self.app, self.instance, uuid.uuid4().hex, samples)

    def _deliver(self, batch: Batch) -> bool:
        """Send ``batch`` until the server answers, then act on the answer.

        After a retryable failure `_after_failure` decides: wait and retry, or set the batch
        aside. True when the sender may go on with the next batch; False when it must stop
        (the probe is closing and the server does not answer).
        """
        self._in_flight = batch.seq
        attempts = 0
        while True:
            attempts += 1
            try:
                actions = self._send(batch)
            except TransportError as error:
                if not error.retryable:
                    self._rejected(batch, error.message)
                    return True
                failure = error.message
            except Exception:
                self._settle(batch)
                self.stats.add(dropped=len(batch.samples))
                logger.exception("transport failed unexpectedly; dropped %d", len(batch.samples))
                return True
            else:
                self._accepted(batch, actions)
                return True
            verdict = self._after_failure(batch, attempts, failure)
            if verdict is not None:
                return verdict
            self._pause(self._backoff.delay(self._outage.failures))
            if self._past_deadline():  # no attempt past close's deadline: one may hang
                self._set_aside(batch)
                return False

    def _send(self, batch: Batch) -> list[ActionMessage]:
        """One attempt at ``batch``, under its key if the transport can carry one."""
        if self._send_takes_key:
            return self.transport.send(
                batch.app, batch.instance, batch.samples, idempotency_key=batch.key
            )
        return self.transport.send(batch.app, batch.instance, batch.samples)

    def _after_failure(self, batch: Batch, attempts: int, error: str) -> bool | None:
        """After ``batch``'s ``attempts``-th attempt failed retryably: None to retry it after
        a pause; otherwise `_deliver`'s verdict, once the batch is set aside (spooled, or
        dropped and counted).

        A batch in the spool costs no memory, so it is retried as long as the probe runs;
        one in memory is retried until the outage is ``retry_for`` old (or ``max_attempts``
        are spent), then set aside. A closing probe stops at its deadline, and after
        ``retry_for`` keeps nothing waiting.
        """
        now = self._monotonic()
        if self._outage.failed(now, error):
            logger.warning(
                "cannot deliver telemetry (%s); retrying for up to %s s", error, self.retry_for
            )
        if self._past_deadline():
            self._set_aside(batch)
            return False
        exhausted = self._outage.age(now) >= self.retry_for or (
            self.max_attempts is not None and attempts >= self.max_attempts
        )
        if not exhausted:
            logger.debug("attempt %d at a batch failed (%s); retrying", attempts, error)
            return None
        spooled = self._set_aside(batch, attempts)
        if self._stopping:
            return False
        return None if spooled else True

    def _set_aside(self, batch: Batch, attempts: int | None = None) -> bool:
        """Spool ``batch`` (True), or drop and count it (False) when there is no spool or
        it refused the batch (which counts the loss itself)."""
        count = len(batch.samples)
        if self._spool is None:
            self._lose(count, self._give_up_reason(attempts))
            return False
        if batch.seq in self._spool:
            return True
        if not self._spool.put(batch, keep=batch.seq):
            return False
        self.stats.add(spooled=count)
        logger.info("spooled a batch of %d samples to %s", count, self._spool.directory)
        return True

    def _give_up_reason(self, attempts: int | None) -> str:
        """Why a batch is given up, for the log."""
        age = self._outage.age(self._monotonic())
        if attempts is None:
            return f"the probe closed before the server answered ({self._outage.last_error})"
        return f"after {attempts} attempts over {age:.1f} s ({self._outage.last_error})"

    def _pause(self, seconds: float) -> None:
        """Wait ``seconds`` before the next attempt, or until close's deadline. Meanwhile
        full batches queued behind go to the spool, if there is one, so a long outage costs
        disk, not samples evicted from the buffer."""
        self._spill()
        if self._sleep is not None:
            self._sleep(seconds)
            return
        end = time.monotonic() + seconds
        while (left := self._time_left(end)) > 0:
            if self._wake.wait(min(left, SPILL_EVERY) if self._spool is not None else left):
                self._wake.clear()  # close was called: its deadline may come sooner
            self._spill()

    def _time_left(self, end: float) -> float:
        """Seconds until ``end`` or close's deadline, whichever comes first."""
        give_up_at = self._give_up_at
        if give_up_at is not None:
            end = min(end, give_up_at)
        return end - time.monotonic()

    def _past_deadline(self) -> bool:
        """Whether close's timeout says the sender must stop retrying now."""
        give_up_at = self._give_up_at
        return give_up_at is not None and time.monotonic() >= give_up_at

    def _spill(self) -> None:
        """Move full batches from the buffer to the spool (when there is one)."""
        spool = self._spool
        if spool is None:
            return
        while len(self._buffer) >= self.batch_size:
            batch = self._form(self._buffer.take(self.batch_size))
            if batch is not None and spool.put(batch, keep=self._in_flight):
                self.stats.add(spooled=len(batch.samples))

    def _set_aside_rest(self) -> None:
        """The probe closes without the server answering: spool what is still buffered, or
        drop and count it."""
        while items := self._buffer.take(self.batch_size):
            batch = self._form(items)
            if batch is not None:
                self._set_aside(batch)

    def _accepted(self, batch: Batch, actions: list[ActionMessage]) -> None:
        """The server stored ``batch``: count it and carry out the actions of the reply."""
        self._settle(batch)
        self._server_answered()
        self.stats.add(sent=len(batch.samples), batches=1)
        self._warned.discard("overflow")  # warn again if a later outage overflows the buffer
        for action in actions:
            self._apply(action)

    def _rejected(self, batch: Batch, error: str) -> None:
        """The server refused ``batch`` for good (4xx): sending it again would not help."""
        self._settle(batch)
        self._server_answered()
        self.stats.add(rejected=len(batch.samples))
        logger.error("server rejected a batch of %d samples: %s", len(batch.samples), error)

    def _settle(self, batch: Batch) -> None:
        """``batch`` needs no more sending: forget its spool file, if it has one."""
        if self._spool is not None:
            self._spool.remove(batch.seq)

    def _server_answered(self) -> None:
        """End the outage, if there was one, saying how long it lasted and what it cost."""
        outage = self._outage
        if outage.ongoing:
            logger.warning(
                "the server answers again after %.1f s (%d failed attempts, %d samples lost)",
                outage.age(self._monotonic()),
                outage.failures,
                outage.dropped,
            )
            outage.end()

    def _lose(self, count: int, reason: str) -> None:
        """Count ``count`` lost samples and log why, as an error; during an outage only the
        first loss is an error and later ones are debug (the recovery message sums them)."""
        self.stats.add(dropped=count)
        outage = self._outage
        loud = not outage.ongoing or outage.dropped == 0
        if outage.ongoing:
            outage.dropped += count
        logger.log(
            logging.ERROR if loud else logging.DEBUG,
            "dropped a batch of %d samples %s",
            count,
            reason,
        )

    def _spool_lost(self, count: int, reason: str) -> None:
        """The spool lost ``count`` samples (full, unreadable or unwritable)."""
        self._lose(count, f"from the spool: {reason}")

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
            # Retried as long as a batch: the server decides nothing new for this service
            # until it hears how the action went.
            self._with_retries(
                lambda: self.transport.report(self.app, action.id, status, reason),
                retry_for=self.retry_for,
                pause=self._pause,
            )
        except Exception as error:
            logger.warning("could not report the result of action %d: %s", action.id, error)

    def _with_retries(
        self, call: Callable[[], T], *, retry_for: float, pause: Callable[[float], None]
    ) -> T:
        """``call()``, retried after a ``pause`` of backoff while it fails retryably; the
        last `TransportError` once ``retry_for`` seconds (or ``max_attempts``) are spent, at
        the first non-retryable one, or when close's deadline has come.
        """
        started = self._monotonic()
        failures = 0
        while True:
            try:
                return call()
            except TransportError as error:
                failures += 1
                if (
                    not error.retryable
                    or self._past_deadline()
                    or self._monotonic() - started >= retry_for
                    or (self.max_attempts is not None and failures >= self.max_attempts)
                ):
                    raise
                delay = self._backoff.delay(failures)
                logger.warning(
                    "attempt %d failed (%s); retrying in %.2f s", failures, error.message, delay
                )
                pause(delay)


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
