"""QoA4ML's reports taken from the AMQP broker: one queue of the server's own, bound to each
registered application's exchange (``<app>_exchange``, routing keys ``<app>.#``).

QoA4ML's connector declares its exchange as a plain, non-durable topic exchange and publishes
with a 1 s expiry, so the bridge declares it exactly so (declaring it durable first would make
the client's declaration fail, and it would send nothing) and binds it while the registration
is answered, before the client can publish. At start the exchanges of every registered
application are bound again (a client registered before a restart keeps reporting).

Reports are mapped (`harmonia.compat.qoa4ml.reports`) as they arrive and stored in batches:
what the broker delivered in one go, grouped by application and instance, goes through
`Server.ingest` (validated, stored, deciding), then is acknowledged at once. A report the
application refuses is dropped with a warning (the others of its batch are stored).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import orjson

from harmonia.compat.qoa4ml.reports import Mapped, ReportInvalid, map_report
from harmonia.server.errors import DOMAIN_ERRORS, Invalid
from harmonia.server.schemas import MAX_BATCH
from harmonia.server.service import Server

logger = logging.getLogger("harmonia.compat.qoa4ml")

#: how many reports one batch (and the broker's unacknowledged window) holds at most
PREFETCH = 20000
MAX_PENDING = 10000


def exchange_of(app: str) -> str:
    return f"{app}_exchange"


class QoA4MLBridge:
    """Consumes QoA4ML's reports for the registered applications on its own thread."""

    def __init__(self, server: Server, url: str) -> None:
        import pika

        from harmonia.sdk._amqp import broker_queue

        self.server = server
        address, _ = broker_queue(url)
        self.parameters = pika.URLParameters(address)
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._error: Exception | None = None
        self._connection: Any = None
        self._channel: Any = None
        self._queue = ""
        self._bound: set[str] = set()
        #: (app, instance) -> list of one list of samples per report
        self._pending: dict[tuple[str, str], list[list[dict[str, Any]]]] = {}
        self._pending_count = 0
        self._last_tag = 0
        self.stored = 0
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="harmonia-qoa4ml", daemon=True)

    # -- life cycle ----------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> None:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"the AMQP broker did not answer within {timeout} s")
        if self._error is not None:
            raise RuntimeError(f"cannot consume QoA4ML reports: {self._error}")
        for app in self.server.store.apps():
            self.bind(app.name)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

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

    def _run(self) -> None:
        import pika

        try:
            self._connection = pika.BlockingConnection(self.parameters)
            self._channel = self._connection.channel()
            declared = self._channel.queue_declare("", exclusive=True, auto_delete=True)
            self._queue = declared.method.queue
            self._channel.basic_qos(prefetch_count=PREFETCH)
            self._channel.basic_consume(self._queue, self._on_message)
        except Exception as error:  # reported by start()
            self._error = error
            self._ready.set()
            return
        self._ready.set()
        try:
            while not self._stop.is_set():
                self._connection.process_data_events(time_limit=0.05 if not self._pending else 0)
                self._flush()
            self._flush()
        finally:
            self._connection.close()

    # -- reports -------------------------------------------------------------------------

    def _on_message(self, channel: Any, method: Any, properties: Any, body: bytes) -> None:
        self._last_tag = method.delivery_tag
        app_name = method.routing_key.split(".", 1)[0]
        try:
            report = orjson.loads(body)
            app = self.server.app(app_name)
            mapped = map_report(app.structure, report, self.server.clock())
        except (orjson.JSONDecodeError, ReportInvalid, *DOMAIN_ERRORS) as error:  # type: ignore[misc]
            self.dropped += 1
            logger.warning("dropped a QoA4ML report for %s: %s", app_name[:64], error)
            return
        self.add(app_name, mapped)
        if self._pending_count >= MAX_PENDING:
            self._flush()

    def add(self, app_name: str, mapped: Mapped) -> None:
        for instance, samples in mapped.batches.items():
            self._pending.setdefault((app_name, instance), []).append(samples)
            self._pending_count += 1

    def _flush(self) -> None:
        if self._pending:
            pending, self._pending, self._pending_count = self._pending, {}, 0
            for (app_name, instance), reports in pending.items():
                for chunk in chunks(reports):
                    self.stored += ingest_reports(self.server, app_name, instance, chunk)
        if self._last_tag:
            self._channel.basic_ack(self._last_tag, multiple=True)
            self._last_tag = 0


def chunks(reports: list[list[dict[str, Any]]]) -> list[list[list[dict[str, Any]]]]:
    """The reports in runs of at most `MAX_BATCH` samples (a batch's limit)."""
    runs: list[list[list[dict[str, Any]]]] = [[]]
    size = 0
    for report in reports:
        if runs[-1] and size + len(report) > MAX_BATCH:
            runs.append([])
            size = 0
        runs[-1].append(report)
        size += len(report)
    return runs


def ingest_reports(
    server: Server, app_name: str, instance: str, reports: list[list[dict[str, Any]]]
) -> int:
    """Store the samples of several reports of one instance as one batch; if the batch is
    refused, each report on its own (a bad report loses only itself). The samples stored."""
    app = server.app(app_name)
    samples = [sample for report in reports for sample in report]
    try:
        return int(server.ingest(app, {"instance": instance, "samples": samples})["accepted"])
    except Invalid as error:
        if len(reports) == 1:
            logger.warning("dropped a QoA4ML report for %s: %s", app_name, error.issues[:3])
            return 0
    except Exception:
        logger.exception("storing QoA4ML reports for %s failed", app_name)
        time.sleep(0.1)
        return 0
    return sum(ingest_reports(server, app_name, instance, [report]) for report in reports)
