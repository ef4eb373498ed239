"""`_Sender`: the probe's background half, the daemon thread that batches, sends and retries.

`Probe` is what the managed system calls; everything that waits on the network or the
server runs here instead, on one thread: forming batches from the buffer, delivering them
under their idempotency keys, riding out an outage with backoff (spooling to disk what
cannot wait), handing the actions of each reply to the probe's `Effector` and reporting
how they went, and the flush and close handshakes with the caller's thread. Kept apart so
that the caller-facing API reads on its own and the sending state sits in one place.

The sender reads the probe's settings (``transport``, ``batch_size``, ``retry_for``,
``effector``...) from the probe each time it needs one, so that assigning one on the probe,
as the shipped systems do with ``probe.effector``, takes effect as it always has.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from harmonia.sdk._buffer import Item, SampleBuffer
from harmonia.sdk._messages import ActionMessage
from harmonia.sdk._retry import Backoff, Outage
from harmonia.sdk._spool import Spool
from harmonia.sdk._transport import TransportError
from harmonia.sdk._wire import Batch, to_wire

if TYPE_CHECKING:
    from harmonia.sdk._probe import Probe

logger = logging.getLogger("harmonia.sdk")

T = TypeVar("T")

SPILL_EVERY = 0.25
"""While the sender waits to retry, how often it moves the batches queued behind to the
spool, so that a fast producer does not overflow the buffer during a long wait."""

MAX_REASON = 2000
"""Longest action-result reason the server stores; longer ones are cut, not refused."""


class _Sender:
    """The thread that sends ``probe``'s samples, and its state.

    Callers put samples into `buffer` (the probe does, without going through the sender);
    the thread wakes on a full batch, a flush, a close or the probe's ``flush_interval``.
    `flush`, `give_up_by`, `stop` and `join` are what the probe's caller-side methods use;
    `with_retries` is shared with `Probe.describe_version`.
    """

    def __init__(
        self,
        probe: Probe,
        *,
        max_buffer: int,
        backoff: float,
        max_backoff: float,
        spool_dir: str | os.PathLike[str] | None,
        spool_max_bytes: int,
        send_takes_key: bool,
        sleep: Callable[[float], None] | None,
        monotonic: Callable[[], float],
    ) -> None:
        self._probe = probe
        self.stats = probe.stats
        self.buffer = SampleBuffer(max_buffer, probe.batch_size)
        self._send_takes_key = send_takes_key
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
            target=self._run, name=f"harmonia-probe[{probe.app}/{probe.instance}]", daemon=True
        )
        if self._spool is not None and len(self._spool):
            self.buffer.ready.set()  # a previous run's batches: send them without waiting

    def start(self) -> None:
        self._thread.start()

    # -- the caller's thread -----------------------------------------------------------------

    def flush(self, timeout: float | None) -> bool:
        """`Probe.flush`: ask the thread to drain the buffer and wait until it has (or has
        stopped); False when ``timeout`` seconds pass first."""
        if threading.current_thread() is self._thread:  # from an action handler
            self._send_pending(everything=True)
            return True
        with self._control:
            if self._stopped:
                return len(self.buffer) == 0
            self._flush_requested += 1
            target = self._flush_requested
        self.buffer.ready.set()
        with self._control:
            return self._control.wait_for(
                lambda: self._flush_done >= target or self._stopped, timeout
            )

    def give_up_by(self, deadline: float) -> None:
        """Make the sender stop retrying at ``deadline`` (`time.monotonic`), or sooner."""
        with self._control:
            if self._give_up_at is None or deadline < self._give_up_at:
                self._give_up_at = deadline
        self._wake.set()

    def stop(self) -> None:
        """Tell the thread to send what is buffered and end (once, from `Probe.close`)."""
        with self._control:
            self._stopping = True
        self.buffer.ready.set()
        self._wake.set()

    def join(self, timeout: float | None) -> bool:
        """Wait for the thread to end after `stop`; False when ``timeout`` passed first, or
        when called from the thread itself. Samples recorded meanwhile are counted dropped."""
        if threading.current_thread() is self._thread:
            return False  # an action handler closed us: the loop stops after this batch
        self._thread.join(timeout)
        if self._thread.is_alive():
            logger.warning(
                "probe %s/%s: sender still busy after %s s; %d buffered samples may be lost",
                self._probe.app,
                self._probe.instance,
                timeout,
                len(self.buffer),
            )
            return False
        late = self.buffer.clear()  # recorded while closing, after the last drain
        if late:
            self.stats.add(dropped=late)
        return True

    # -- the sender thread -------------------------------------------------------------------

    def _run(self) -> None:
        """Wake on a full batch, a flush, a close or the interval; send; repeat until closed."""
        ready = self.buffer.ready
        next_tick = time.monotonic() + self._probe.flush_interval
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
                next_tick = now + self._probe.flush_interval
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
        buffer = self.buffer
        remaining = len(buffer) if everything else 0
        while not self._past_deadline():
            batch = self._spool.oldest() if self._spool is not None else None
            if batch is None:
                if remaining <= 0 and len(buffer) < self._probe.batch_size:
                    return True
                items = buffer.take(self._probe.batch_size)
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
        probe = self._probe
        service, stage = probe.service, probe.stage
        samples: list[dict[str, Any]] = []
        invalid: list[str] = []
        for item in items:
            try:
                samples.append(to_wire(item, service, stage))
            except Exception as error:  # ValueError, TypeError, OverflowError...: this sample
                invalid.append(f"{type(error).__name__}: {error}")
        if invalid:
            self.stats.add(dropped=len(invalid))
            logger.warning("dropped %d invalid samples; first: %s", len(invalid), invalid[0])
        if not samples:
            return None
        return Batch(next(self._seqs), probe.app, probe.instance, uuid.uuid4().hex, samples)

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
            return self._probe.transport.send(
                batch.app, batch.instance, batch.samples, idempotency_key=batch.key
            )
        return self._probe.transport.send(batch.app, batch.instance, batch.samples)

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
                "cannot deliver telemetry (%s); retrying for up to %s s",
                error,
                self._probe.retry_for,
            )
        if self._past_deadline():
            self._set_aside(batch)
            return False
        exhausted = self._outage.age(now) >= self._probe.retry_for or (
            self._probe.max_attempts is not None and attempts >= self._probe.max_attempts
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

    def pause_caller(self, seconds: float) -> None:
        """A plain pause between retries on the caller's thread (`Probe.describe_version`):
        the injected ``sleep`` where there is one, else `time.sleep`."""
        (self._sleep or time.sleep)(seconds)

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
        while len(self.buffer) >= self._probe.batch_size:
            batch = self._form(self.buffer.take(self._probe.batch_size))
            if batch is not None and spool.put(batch, keep=self._in_flight):
                self.stats.add(spooled=len(batch.samples))

    def _set_aside_rest(self) -> None:
        """The probe closes without the server answering: spool what is still buffered, or
        drop and count it."""
        while items := self.buffer.take(self._probe.batch_size):
            batch = self._form(items)
            if batch is not None:
                self._set_aside(batch)

    def _accepted(self, batch: Batch, actions: list[ActionMessage]) -> None:
        """The server stored ``batch``: count it and carry out the actions of the reply."""
        self._settle(batch)
        self._server_answered()
        self.stats.add(sent=len(batch.samples), batches=1)
        self._probe._warned.discard("overflow")  # warn again if a later outage overflows the buffer
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
        status, reason = self._probe.effector.handle(action)
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
            self.with_retries(
                lambda: self._probe.transport.report(self._probe.app, action.id, status, reason),
                retry_for=self._probe.retry_for,
                pause=self._pause,
            )
        except Exception as error:
            logger.warning("could not report the result of action %d: %s", action.id, error)

    def with_retries(
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
                    or (
                        self._probe.max_attempts is not None
                        and failures >= self._probe.max_attempts
                    )
                ):
                    raise
                delay = self._backoff.delay(failures)
                logger.warning(
                    "attempt %d failed (%s); retrying in %.2f s", failures, error.message, delay
                )
                pause(delay)
