"""The QoA4ML bridge's storer, without a broker: what is stored, dropped or given back, and
that each delivery is acknowledged only once its reports are stored, in delivery order."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harmonia.compat.qoa4ml import bridge as bridge_module
from harmonia.compat.qoa4ml.bridge import Delivery, Inbox, QoA4MLBridge, runs
from harmonia.server.errors import Invalid
from harmonia.server.schemas import AppIn
from harmonia.server.service import Server
from harmonia.store import Store, sqlite_url

APP = "shop"


class Channel:
    """Records the acknowledgments the storer asks for."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, int, bool]] = []

    def basic_ack(self, tag: int, multiple: bool) -> None:
        self.sent.append(("ack", tag, multiple))

    def basic_nack(self, tag: int, multiple: bool, requeue: bool) -> None:
        self.sent.append(("requeue" if requeue else "reject", tag, multiple))


class Connection:
    """Runs a thread-safe callback at once (the reader's thread would run it later)."""

    def add_callback_threadsafe(self, callback: Callable[[], None]) -> None:
        callback()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    store = Store(sqlite_url(tmp_path))
    server = Server(store, "admin")
    server.register(
        AppIn.model_validate(
            {
                "name": APP,
                "owner": "t",
                "stages": [{"name": "detect", "services": [{"name": "yolo", "models": ["yolo"]}]}],
            }
        )
    )
    yield server
    store.close()


@pytest.fixture
def bridge(server: Server, monkeypatch: pytest.MonkeyPatch) -> QoA4MLBridge:
    monkeypatch.setattr(bridge_module, "RETRY_PAUSE_S", 0.0)
    made = QoA4MLBridge(server, "amqp://guest:guest@127.0.0.1:5672/%2F")
    made._connection, made._channel = Connection(), Channel()
    return made


def body(instance: str, latency_s: float = 0.01, ts: float = 1000.0) -> bytes:
    report = {
        "metadata": {
            "client_config": {"instance_id": instance, "stage_id": "detect"},
            "timestamp": ts,
        },
        "service": {
            "detect": {
                "metrics": {"response_time": {instance: {"records": [{"responseTime": latency_s}]}}}
            }
        },
    }
    return json.dumps(report).encode()


def deliveries(*bodies: bytes, app: str = APP, redelivered: bool = False) -> list[Delivery]:
    return [Delivery(tag, app, b, redelivered) for tag, b in enumerate(bodies, start=1)]


def stored(server: Server) -> list[dict[str, Any]]:
    return list(server.store.telemetry(server.store.app(APP)))


def store_all(bridge: QoA4MLBridge, batch: list[Delivery]) -> list[tuple[str, int, bool]]:
    """Run the storer over ``batch`` until the inbox is empty; the acknowledgments sent."""
    bridge._inbox.put(batch)
    bridge._inbox.close()
    bridge._store_all()
    sent: list[tuple[str, int, bool]] = bridge._channel.sent
    return sent


def test_a_batch_is_stored_by_instance_then_acknowledged_at_once(
    bridge: QoA4MLBridge, server: Server
) -> None:
    batch = deliveries(*(body(f"i-{n % 3}", ts=1000.0 + n) for n in range(30)))
    assert store_all(bridge, batch) == [("ack", 30, True)]
    rows = stored(server)
    assert len(rows) == 30 and bridge.stored == 30
    assert {r["instance"] for r in rows} == {"i-0", "i-1", "i-2"}
    assert bridge.dropped == bridge.failed == 0


def test_what_cannot_be_taken_is_dropped_counted_and_acknowledged(
    bridge: QoA4MLBridge, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bridge_module, "MAX_REPORT_BYTES", 2000)
    batch = [
        *deliveries(body("a"), b"{not json", json.dumps({"x": 1}).encode(), b"[1]"),
        Delivery(5, "nosuchapp", body("a"), False),
        Delivery(6, APP, b" " * 3000, False),
        Delivery(7, APP, json.dumps({"service": {"detect": [1]}}).encode(), False),
        Delivery(8, APP, body("b"), False),
    ]
    assert store_all(bridge, batch) == [("ack", 8, True)]
    assert bridge.dropped == 6 and bridge.stored == 2
    assert {r["instance"] for r in stored(server)} == {"a", "b"}


def test_a_report_the_application_refuses_loses_only_itself(
    bridge: QoA4MLBridge, server: Server
) -> None:
    batch = deliveries(body("a"), body("a", latency_s=-1.0), body("a", ts=float("1e30")))
    store_all(bridge, batch)
    assert bridge.stored == 2 and bridge.dropped == 1  # a date far in the future is refused
    assert len(stored(server)) == 2


def test_a_failing_store_is_retried_then_given_back_and_nothing_is_acknowledged_early(
    bridge: QoA4MLBridge, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    ingest = server.ingest

    def flaky(app: Any, batch: dict[str, Any], key: str | None = None) -> dict[str, Any]:
        calls.append(batch["instance"])
        if batch["instance"] == "down":
            raise RuntimeError("database is locked")
        return ingest(app, batch, key)

    monkeypatch.setattr(server, "ingest", flaky)
    batch = [
        *deliveries(body("a"), body("down"), body("down"), body("b")),
        Delivery(5, APP, body("down"), True),  # given back once already
        Delivery(6, APP, body("c"), False),
    ]
    sent = store_all(bridge, batch)
    assert calls.count("down") == bridge_module.STORE_ATTEMPTS
    assert sent == [
        ("ack", 1, True),
        ("requeue", 3, True),
        ("ack", 4, True),
        ("reject", 5, True),
        ("ack", 6, True),
    ]
    assert bridge.failed == 1 and bridge.stored == 3


def test_a_refused_batch_is_split_and_the_refused_report_dropped(
    bridge: QoA4MLBridge, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest = server.ingest

    def picky(app: Any, batch: dict[str, Any], key: str | None = None) -> dict[str, Any]:
        if any(s.get("latency_ms") == 666.0 for s in batch["samples"]):
            raise Invalid([{"field": "samples", "reason": "no"}])
        return ingest(app, batch, key)

    monkeypatch.setattr(server, "ingest", picky)
    store_all(bridge, deliveries(body("a"), body("a", latency_s=0.666), body("a")))
    assert bridge.stored == 2 and bridge.dropped == 1


def test_runs_name_each_stretch_of_one_outcome_by_its_last_tag() -> None:
    batch = deliveries(*(b"x" for _ in range(6)))
    outcomes: list[Any] = ["ack", "ack", "requeue", "reject", "ack", "ack"]
    assert runs(batch, outcomes) == [(2, "ack"), (3, "requeue"), (4, "reject"), (6, "ack")]
    assert runs([], []) == []


def test_the_inbox_hands_out_in_order_counts_bytes_until_released_and_closes() -> None:
    inbox = Inbox(max_bytes=10)
    inbox.put(deliveries(b"12345", b"678"))
    assert inbox.wait_for_room(0)
    inbox.put(deliveries(b"90"))
    assert not inbox.wait_for_room(0)  # 10 bytes held: the reader pauses
    taken = inbox.take(most=2, enough=1, linger=0)
    assert [d.body for d in taken] == [b"12345", b"678"]
    assert not inbox.wait_for_room(0)  # taken, not yet stored: still counted
    inbox.release(taken)
    assert inbox.wait_for_room(0) and len(inbox) == 1
    inbox.close()
    assert [d.body for d in inbox.take(most=5, enough=5, linger=10)] == [b"90"]
    assert inbox.take(most=5, enough=5, linger=10) == []


def test_the_inbox_waits_for_a_fuller_batch_only_so_long() -> None:
    inbox = Inbox()
    inbox.put(deliveries(b"a"))
    later = threading.Timer(0.05, lambda: inbox.put(deliveries(b"b")))
    later.start()
    assert len(inbox.take(most=10, enough=2, linger=5)) == 2  # the second came in time
    inbox.put(deliveries(b"c"))
    assert len(inbox.take(most=10, enough=2, linger=0.01)) == 1  # no more came
