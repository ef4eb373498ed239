"""What the server shows about itself and its applications: telemetry export (CSV,
Parquet), Prometheus metrics, and a server-sent-events stream for the dashboard."""

import asyncio
import csv
import io
import json
import threading
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from harmonia.store.telemetry import TELEMETRY_COLUMNS

EXPORT_BATCH = 10_000


def telemetry_csv(rows: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    """CSV, streamed in chunks; ``metrics`` is a JSON object per row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(TELEMETRY_COLUMNS)
    for count, row in enumerate(rows, start=1):
        writer.writerow(
            json.dumps(row[c]) if c == "metrics" else ("" if row[c] is None else row[c])
            for c in TELEMETRY_COLUMNS
        )
        if count % 1000 == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


#: an energy export's columns after the group's name (whose header is ``by``: stage...)
ENERGY_COLUMNS = (
    "samples",
    "total_j",
    "j_per_request",
    "share",
    "g_co2e",
    "g_co2e_per_request",
    "node_j",
)


def energy_csv(view: dict[str, Any]) -> bytes:
    """An energy breakdown (``GET /apps/{app}/energy``'s reply) as CSV: a row per group,
    its figures, and ``method``, how its joules were obtained (several joined by ``; ``)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow((view["by"], *ENERGY_COLUMNS, "method"))
    for key, figures in view["groups"].items():
        values = ("" if figures.get(c) is None else figures[c] for c in ENERGY_COLUMNS)
        writer.writerow((key, *values, "; ".join(view["methods"].get(key, []))))
    return buffer.getvalue().encode()


def telemetry_parquet(rows: Iterable[dict[str, Any]]) -> bytes:
    """Parquet (one file, row groups of ``EXPORT_BATCH``); ``metrics`` as JSON text."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [
            ("instance", pa.string()),
            ("service", pa.string()),
            ("model", pa.string()),
            ("model_version", pa.int64()),
            ("ts", pa.float64()),
            ("latency_ms", pa.float64()),
            ("energy_j", pa.float64()),
            ("energy_source", pa.string()),
            ("prediction", pa.float64()),
            ("target", pa.float64()),
            ("drift_value", pa.float64()),
            ("metrics", pa.string()),
        ]
    )
    sink = io.BytesIO()
    with pq.ParquetWriter(sink, schema) as writer:
        batch: list[dict[str, Any]] = []
        for row in rows:
            batch.append({**row, "metrics": json.dumps(row["metrics"])})
            if len(batch) == EXPORT_BATCH:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                batch = []
        if batch or sink.tell() == 0:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
    return sink.getvalue()


@dataclass
class Counters:
    """The server's own counters, for ``/metrics``."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    samples: Counter[str] = field(default_factory=Counter)
    batches: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    actions: Counter[tuple[str, str]] = field(default_factory=Counter)

    def ingested(self, app: str, samples: int) -> None:
        with self.lock:
            self.samples[app] += samples
            self.batches[app] += 1

    def rejected_batch(self, app: str) -> None:
        with self.lock:
            self.rejected[app] += 1

    def decided(self, app: str, kinds: Iterable[str]) -> None:
        with self.lock:
            for kind in kinds:
                self.actions[(app, kind)] += 1


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def prometheus(counters: Counters, gauges: dict[tuple[str, str], dict[str, float]]) -> str:
    """The text exposition format: counters of the server, gauges of the last window of
    each (app, service)."""
    lines = [
        "# HELP harmonia_telemetry_samples_total Samples stored, per application.",
        "# TYPE harmonia_telemetry_samples_total counter",
    ]
    with counters.lock:
        samples, batches = dict(counters.samples), dict(counters.batches)
        rejected, actions = dict(counters.rejected), dict(counters.actions)
    lines += [
        f'harmonia_telemetry_samples_total{{app="{_label(a)}"}} {n}' for a, n in samples.items()
    ]
    lines += [
        "# HELP harmonia_telemetry_batches_total Batches stored.",
        "# TYPE harmonia_telemetry_batches_total counter",
    ]
    lines += [
        f'harmonia_telemetry_batches_total{{app="{_label(a)}"}} {n}' for a, n in batches.items()
    ]
    lines += [
        "# HELP harmonia_rejected_batches_total Batches refused as invalid.",
        "# TYPE harmonia_rejected_batches_total counter",
    ]
    lines += [
        f'harmonia_rejected_batches_total{{app="{_label(a)}"}} {n}' for a, n in rejected.items()
    ]
    lines += [
        "# HELP harmonia_actions_total Decisions, per application and kind.",
        "# TYPE harmonia_actions_total counter",
    ]
    lines += [
        f'harmonia_actions_total{{app="{_label(a)}",kind="{_label(k)}"}} {n}'
        for (a, k), n in actions.items()
    ]
    lines += [
        "# HELP harmonia_window_signal A signal of the last closed window.",
        "# TYPE harmonia_window_signal gauge",
    ]
    for (app, service), signals in gauges.items():
        labels = f'app="{_label(app)}",service="{_label(service)}"'
        for name, value in signals.items():
            if value == value:  # NaN: unknown, not exported
                lines.append(f'harmonia_window_signal{{{labels},signal="{_label(name)}"}} {value}')
    return "\n".join(lines) + "\n"


class TooManySubscribers(Exception):
    """The event stream's subscriber cap is reached."""


@dataclass(eq=False)
class Subscription:
    """One subscriber's queue; `Broadcaster` closes it when the reader falls behind."""

    app: str
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[bytes | None]
    #: whether it may see raw telemetry (it showed the app's or the admin token)
    raw: bool = False
    dropped: bool = False


class Broadcaster:
    """Fan-out of events to server-sent-event subscribers, from any thread.

    Subscribers are capped (per application and in all): each costs the ingestion path a
    little. Each has a bounded queue, and a reader that lets it fill up is dropped (its
    stream ends; a browser's EventSource reconnects), never waited for. One wake-up of the
    event loop per event, whatever the number of subscribers.
    """

    def __init__(self, limit: int = 1000, *, per_app: int = 20, total: int = 200) -> None:
        self.limit = limit
        self.per_app = per_app
        self.total = total
        self._lock = threading.Lock()
        self._subscribers: dict[str, list[Subscription]] = {}

    def subscribe(self, app: str, *, raw: bool = False) -> Subscription:
        """Register a subscriber of ``app``'s events (with ``raw``, its telemetry samples
        too); `TooManySubscribers` at the cap."""
        with self._lock:
            mine = self._subscribers.setdefault(app, [])
            everyone = sum(len(subs) for subs in self._subscribers.values())
            if len(mine) >= self.per_app or everyone >= self.total:
                raise TooManySubscribers(
                    f"the event stream has its {self.per_app} subscribers per application "
                    f"({self.total} in all); try again later"
                )
            queue: asyncio.Queue[bytes | None] = asyncio.Queue(self.limit)
            subscription = Subscription(app, asyncio.get_running_loop(), queue, raw)
            mine.append(subscription)
        return subscription

    def publish(self, app: str, event: str, data: dict[str, Any], *, raw: bool = False) -> None:
        """Send an event to ``app``'s subscribers; a ``raw`` one (telemetry samples, which
        the export guards with a token too) only to those who showed a token."""
        with self._lock:
            targets = [s for s in self._subscribers.get(app, ()) if s.raw or not raw]
        if not targets:
            return  # nobody listens: nothing to serialise (this sits on the ingestion path)
        message = f"event: {event}\ndata: ".encode() + orjson.dumps(data) + b"\n\n"
        loop = targets[0].loop  # one server, one event loop
        try:
            on_loop = asyncio.get_running_loop() is loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            self._offer(targets, message)
        else:
            loop.call_soon_threadsafe(self._offer, targets, message)

    def _offer(self, targets: list[Subscription], message: bytes) -> None:
        for subscription in targets:
            if subscription.dropped:
                continue
            if subscription.queue.qsize() >= self.limit - 1:
                # the reader is too slow: end its stream rather than hold events for it
                subscription.dropped = True
                subscription.queue.put_nowait(None)
                self._remove(subscription)
            else:
                subscription.queue.put_nowait(message)

    def _remove(self, subscription: Subscription) -> None:
        with self._lock:
            subs = self._subscribers.get(subscription.app, [])
            if subscription in subs:
                subs.remove(subscription)

    async def stream(
        self, subscription: Subscription, heartbeat: float = 15.0
    ) -> AsyncIterator[bytes]:
        """The subscriber's events as server-sent-event bytes, until it is dropped."""
        try:
            yield b": connected\n\n"
            while True:
                try:
                    message = await asyncio.wait_for(subscription.queue.get(), heartbeat)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                if message is None:
                    return
                yield message
        finally:
            self._remove(subscription)

    def count(self) -> int:
        with self._lock:
            return sum(len(subs) for subs in self._subscribers.values())


def finite_or_none(value: Any) -> Any:
    """JSON has no NaN: an unknown number is null."""
    return None if isinstance(value, float) and value != value else value


def finite_row(row: dict[str, Any]) -> dict[str, Any]:
    """`finite_or_none` of each value."""
    return {k: finite_or_none(v) for k, v in row.items()}
