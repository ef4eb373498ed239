"""QoA4ML's reports taken from the AMQP broker: one queue of the server's own, bound to each
registered application's exchange (``<app>_exchange``, routing keys ``<app>.#``).

QoA4ML's connector declares its exchange as a plain, non-durable topic exchange and publishes
with a 1 s expiry, so the bridge declares it exactly so (declaring it durable first would make
the client's declaration fail, and it would send nothing) and binds it while the registration
is answered, before the client can publish. At start the exchanges of every registered
application are bound again (a client registered before a restart keeps reporting).

The expiry rules the design. A message expires only while it waits in the broker's queue;
once delivered (unacknowledged) it is the consumer's. So two threads share the work:

- the *reader* (the connection's thread) only moves deliveries from the socket into a bounded
  `Inbox` in memory, with a wide prefetch window, so that reports leave the queue well within
  their second even while a batch is being stored;
- the *storer* maps what the inbox holds (`harmonia.compat.qoa4ml.reports`), groups it by
  application and instance, stores it through `Server.ingest` in big batches (what a batch
  costs is mostly per batch, not per report) and only then has the reader acknowledge it.

Guarantees: nothing is acknowledged before it is stored. A report that cannot be read or that
the application refuses is dropped with a warning, counted in ``dropped`` and acknowledged
(the others of its batch are stored). If the store fails, the batch is tried again a few
times, then given back to the broker (once; a report given back before is discarded, counted
in ``failed``). Memory is bounded twice: the broker never has more than `PREFETCH` reports
unacknowledged, and the reader stops reading (the broker keeps the rest) while the inbox holds
`MAX_INBOX_BYTES` — the backpressure: past that, reports wait in the broker and may expire.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import orjson

from harmonia.compat.qoa4ml.reports import Mapped, ReportInvalid, map_report

if TYPE_CHECKING:  # harmonia.server imports this module (through routes): imported late
    from harmonia.server.service import Server

logger = logging.getLogger("harmonia.compat.qoa4ml")

#: the most reports the broker hands over unacknowledged (AMQP allows up to 65535)
PREFETCH = 50_000
#: the reader pauses while the inbox holds this many bytes of reports, reading only every
#: `PAUSED_READ_S` meanwhile (heartbeats, acknowledgments and bindings must go through)
MAX_INBOX_BYTES = 64 * 1024 * 1024
PAUSED_READ_S = 5.0
#: a bigger report is dropped unread
MAX_REPORT_BYTES = 4 * 1024 * 1024
#: the most reports stored (then acknowledged) as one batch
STORE_BATCH = 5_000
#: a batch smaller than this waits up to `LINGER_S` for more reports
FULL_ENOUGH = 1_000
LINGER_S = 0.05
#: tries of a batch the store failed, and the pause before the first retry (doubled each time)
STORE_ATTEMPTS = 4
RETRY_PAUSE_S = 0.2

#: what becomes of a delivery once the storer is done with it
Outcome = Literal["ack", "requeue", "reject"]


def exchange_of(app: str) -> str:
    return f"{app}_exchange"


@dataclass(slots=True)
class Delivery:
    """One message as the broker delivered it (the routing key's first part is the app)."""

    tag: int
    app: str
    body: bytes
    redelivered: bool


class Inbox:
    """Deliveries taken off the socket, oldest first, waiting for the storer. It counts the
    bytes it holds until the storer releases them (stored), so the reader can pause."""

    def __init__(self, max_bytes: int = MAX_INBOX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._items: deque[Delivery] = deque()
        self._bytes = 0
        self._closed = False
        self._changed = threading.Condition()

    def put(self, deliveries: list[Delivery]) -> None:
        with self._changed:
            self._items.extend(deliveries)
            self._bytes += sum(len(d.body) for d in deliveries)
            self._changed.notify_all()

    def wait_for_room(self, timeout: float) -> bool:
        """Whether the inbox has room, waiting up to ``timeout`` for the storer to make some."""
        with self._changed:
            return self._changed.wait_for(lambda: self._bytes < self.max_bytes, timeout)

    def take(self, most: int, enough: int, linger: float) -> list[Delivery]:
        """Up to ``most`` deliveries, oldest first: as soon as ``enough`` are there, else
        after ``linger`` seconds (bigger batches store cheaper); [] once closed and empty."""
        with self._changed:
            self._changed.wait_for(lambda: self._items or self._closed)
            self._changed.wait_for(lambda: len(self._items) >= enough or self._closed, linger)
            count = min(most, len(self._items))
            return [self._items.popleft() for _ in range(count)]

    def release(self, deliveries: list[Delivery]) -> None:
        """The storer is done with ``deliveries``: their bytes no longer count."""
        with self._changed:
            self._bytes -= sum(len(d.body) for d in deliveries)
            self._changed.notify_all()

    def close(self) -> None:
        """No more deliveries will come; the storer finishes what is there."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def __len__(self) -> int:
        return len(self._items)


class QoA4MLBridge:
    """Consumes QoA4ML's reports for the registered applications: a reader thread drains the
    broker into the inbox, a storer thread stores and acknowledges (see the module)."""

    def __init__(self, server: Server, url: str) -> None:
        import pika

        from harmonia.sdk._amqp import broker_queue
        from harmonia.server.errors import DOMAIN_ERRORS

        self.server = server
        #: what the application answers when it refuses reports (not a failing store)
        self._refusals = DOMAIN_ERRORS
        address, _ = broker_queue(url)
        self.parameters = pika.URLParameters(address)
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._error: Exception | None = None
        self._connection: Any = None
        self._channel: Any = None
        self._consumer = ""
        self._queue = ""
        self._bound: set[str] = set()
        self._inbox = Inbox()
        self._received: list[Delivery] = []
        #: samples stored; reports dropped (unreadable, refused); reports the store failed
        self.stored = 0
        self.dropped = 0
        self.failed = 0
        self._reader = threading.Thread(target=self._read, name="harmonia-qoa4ml", daemon=True)
        self._storer = threading.Thread(
            target=self._store_all, name="harmonia-qoa4ml-store", daemon=True
        )

    # -- life cycle ----------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> None:
        self._reader.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"the AMQP broker did not answer within {timeout} s")
        if self._error is not None:
            raise RuntimeError(f"cannot consume QoA4ML reports: {self._error}")
        self._storer.start()
        for app in self.server.store.apps():
            self.bind(app.name)

    def stop(self) -> None:
        """Stop consuming, store what was received, acknowledge it, disconnect."""
        self._stop.set()
        self._reader.join(timeout=15)

    def bind(self, app: str, timeout: float = 10.0) -> None:
        """Declare ``app``'s exchange as QoA4ML does and bind the queue to it; returns once
        the broker confirmed (raises otherwise)."""
        if app in self._bound:
            return
        done = threading.Event()
        failure: list[Exception] = []

        def declare() -> None:
            try:
                self._channel.exchange_declare(exchange_of(app), exchange_type="topic")
                self._channel.queue_bind(self._queue, exchange_of(app), routing_key=f"{app}.#")
                self._bound.add(app)
            except Exception as error:
                failure.append(error)
            done.set()

        if self._connection is None:
            raise RuntimeError("the QoA4ML bridge is not connected")
        self._connection.add_callback_threadsafe(declare)
        if not done.wait(timeout):
            raise RuntimeError("the AMQP broker did not bind the exchange in time")
        if failure:
            raise RuntimeError(f"cannot bind {exchange_of(app)}: {failure[0]}")

    # -- the reader: socket to inbox ------------------------------------------------------

    def _read(self) -> None:
        try:
            self._connect()
        except Exception as error:  # reported by start()
            self._error = error
            self._ready.set()
            return
        self._ready.set()
        try:
            while not self._stop.is_set():
                self._read_some()
            self._finish()
        except Exception:
            logger.exception("the QoA4ML bridge lost the AMQP broker; reports are not consumed")
        finally:
            self._inbox.close()
            self._close()

    def _connect(self) -> None:
        import pika

        self._connection = pika.BlockingConnection(self.parameters)
        self._channel = self._connection.channel()
        declared = self._channel.queue_declare("", exclusive=True, auto_delete=True)
        self._queue = declared.method.queue
        self._channel.basic_qos(prefetch_count=PREFETCH)
        self._consumer = self._channel.basic_consume(self._queue, self._on_message)

    def _read_some(self) -> None:
        """Move what the socket holds into the inbox (waiting a little for it to come)."""
        room = self._wait_for_room()
        self._connection.process_data_events(time_limit=0.05 if room else 0)
        if self._received:
            received, self._received = self._received, []
            self._inbox.put(received)

    def _wait_for_room(self) -> bool:
        """Whether the inbox has room. While it is full the broker keeps the reports; one
        read every `PAUSED_READ_S` (it takes at most ~100 kB) lets the rest go through."""
        deadline = time.monotonic() + PAUSED_READ_S
        while not self._inbox.wait_for_room(timeout=0.25):
            if self._stop.is_set() or time.monotonic() > deadline:
                return False
        return True

    def _on_message(self, channel: Any, method: Any, properties: Any, body: bytes) -> None:
        app = method.routing_key.split(".", 1)[0]
        self._received.append(Delivery(method.delivery_tag, app, body, method.redelivered))

    def _finish(self, timeout: float = 10.0) -> None:
        """At stop: no more deliveries (pika gives back the undispatched ones), the storer
        stores what the inbox holds, and its acknowledgments go out."""
        self._channel.basic_cancel(self._consumer)
        if self._received:
            self._inbox.put(self._received)
            self._received = []
        self._inbox.close()
        deadline = time.monotonic() + timeout
        while self._storer.is_alive() and time.monotonic() < deadline:
            self._connection.process_data_events(time_limit=0.05)
        self._connection.process_data_events(time_limit=0)

    def _close(self) -> None:
        try:
            if self._connection is not None and self._connection.is_open:
                self._connection.close()
        except Exception:  # closing a broken connection: nothing left to save
            logger.debug("closing the QoA4ML bridge's connection failed", exc_info=True)

    # -- the storer: inbox to store, then acknowledged ------------------------------------

    def _store_all(self) -> None:
        while True:
            batch = self._inbox.take(STORE_BATCH, FULL_ENOUGH, LINGER_S)
            if not batch:
                return
            try:
                outcomes = self._store(batch)
            except Exception:  # a bug: the batch goes back to the broker, the bridge goes on
                logger.exception("storing QoA4ML reports failed")
                outcomes = [_undone(d) for d in batch]
                self.failed += sum(o == "reject" for o in outcomes)
            self._settle(runs(batch, outcomes))
            self._inbox.release(batch)

    def _store(self, batch: list[Delivery]) -> list[Outcome]:
        """Map and store ``batch``; what becomes of each delivery."""
        now = self.server.clock()
        #: (app, instance) -> (delivery index, samples) of each report
        groups: dict[tuple[str, str], list[tuple[int, list[dict[str, Any]]]]] = {}
        for index, delivery in enumerate(batch):
            mapped = self._map(delivery, now)
            for instance, samples in mapped.batches.items() if mapped else ():
                groups.setdefault((delivery.app, instance), []).append((index, samples))
        outcomes: list[Outcome] = ["ack"] * len(batch)
        for (app_name, instance), reports in groups.items():
            for index in self._ingest(app_name, instance, reports):
                outcomes[index] = _undone(batch[index])
        self.failed += sum(o == "reject" for o in outcomes)
        return outcomes

    def _map(self, delivery: Delivery, now: float) -> Mapped | None:
        """The report's samples; None (counted, logged) if it cannot be taken. Whatever goes
        wrong here is the report's own matter: it must not cost the rest of its batch."""
        try:
            if len(delivery.body) > MAX_REPORT_BYTES:
                raise ReportInvalid(f"{len(delivery.body)} bytes, over {MAX_REPORT_BYTES}")
            report = orjson.loads(delivery.body)
            app = self.server.app(delivery.app)
            return map_report(app.structure, report, now)
        except Exception as error:
            self._drop(delivery.app, error)
            return None

    def _ingest(
        self, app_name: str, instance: str, reports: list[tuple[int, list[dict[str, Any]]]]
    ) -> list[int]:
        """Store one instance's reports (delivery index, samples) in batches of at most
        `MAX_BATCH` samples, retrying a failing store; the indices it could not store."""
        undone: list[int] = []
        position = 0
        for chunk in chunks([samples for _, samples in reports]):
            indices = [index for index, _ in reports[position : position + len(chunk)]]
            position += len(chunk)
            for attempt in range(STORE_ATTEMPTS):
                try:
                    self.stored += self._ingest_refusing(app_name, instance, chunk)
                    break
                except Exception:
                    logger.exception("storing QoA4ML reports for %s failed", app_name)
                    if attempt + 1 < STORE_ATTEMPTS and not self._stop.is_set():
                        time.sleep(RETRY_PAUSE_S * 2**attempt)
            else:
                undone.extend(indices)
        return undone

    def _ingest_refusing(
        self, app_name: str, instance: str, reports: list[list[dict[str, Any]]]
    ) -> int:
        """The samples stored. If the application refuses the batch, each report is stored
        on its own and a refused one is dropped (a bad report loses only itself); a failing
        store raises."""
        app = self.server.app(app_name)
        samples = [sample for report in reports for sample in report]
        try:
            return int(
                self.server.ingest(app, {"instance": instance, "samples": samples})["accepted"]
            )
        except self._refusals as error:
            if len(reports) == 1:
                self._drop(app_name, error)
                return 0
        return sum(self._ingest_refusing(app_name, instance, [report]) for report in reports)

    def _drop(self, app_name: str, error: Exception) -> None:
        self.dropped += 1
        reason = getattr(error, "issues", None) or error
        logger.warning("dropped a QoA4ML report for %s: %s", app_name[:64], str(reason)[:500])

    def _settle(self, settled: list[tuple[int, Outcome]]) -> None:
        """Have the reader acknowledge (or give back) each run of deliveries, in order."""

        def send() -> None:
            for tag, outcome in settled:
                if outcome == "ack":
                    self._channel.basic_ack(tag, multiple=True)
                else:
                    self._channel.basic_nack(tag, multiple=True, requeue=outcome == "requeue")

        try:
            self._connection.add_callback_threadsafe(send)
        except Exception:  # the connection is gone: the broker takes them back itself
            logger.warning("cannot acknowledge %d QoA4ML deliveries: disconnected", len(settled))


def _undone(delivery: Delivery) -> Outcome:
    """A report the store could not take goes back to the broker once; then it is dropped."""
    return "reject" if delivery.redelivered else "requeue"


def runs(batch: list[Delivery], outcomes: list[Outcome]) -> list[tuple[int, Outcome]]:
    """The batch's deliveries as runs of one outcome, each named by its last delivery tag:
    one acknowledgment with ``multiple`` settles a whole run (all before it are settled)."""
    settled: list[tuple[int, Outcome]] = []
    for delivery, outcome in zip(batch, outcomes, strict=True):
        if settled and settled[-1][1] == outcome:
            settled[-1] = (delivery.tag, outcome)
        else:
            settled.append((delivery.tag, outcome))
    return settled


def chunks(reports: list[list[dict[str, Any]]]) -> list[list[list[dict[str, Any]]]]:
    """The reports in runs of at most `MAX_BATCH` samples (a batch's limit)."""
    from harmonia.server.openapi import MAX_BATCH

    parts: list[list[list[dict[str, Any]]]] = [[]]
    size = 0
    for report in reports:
        if parts[-1] and size + len(report) > MAX_BATCH:
            parts.append([])
            size = 0
        parts[-1].append(report)
        size += len(report)
    return parts
