"""`Probe` through outages (issue 10, findings 12 and 14): retries for a time with a capped,
jittered backoff, a spool on disk, bounded closing, and idempotency keys on every retry.

Most tests run the outage on an injected clock (``sleep`` advances it), so a minute-long
outage takes milliseconds; those about closing use real time, since close's timeout is.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from harmonia.sdk import ActionMessage, InMemoryTransport, Probe, ProbeStats, TransportError
from harmonia.sdk._envelope import BrokerTransport, reply_body, request_payload
from harmonia.sdk._probe import DESCRIBE_RETRY_FOR
from harmonia.sdk._spool import _encode
from harmonia.sdk._wire import Batch, to_wire

WAIT = 10.0
"""Generous bound on waits for the background thread, so a broken probe fails, not hangs."""

KEY = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
"""What the server accepts as an idempotency key."""


class FakeTime:
    """A monotonic clock that only ``sleep`` advances; remembers every sleep."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Server:
    """The server side of the contract, down (retryable errors) while ``is_down()``.

    Stores a batch once per idempotency key, as the real server does, and remembers the key
    of every attempt.
    """

    def __init__(self) -> None:
        self.down = False
        self.attempts: list[str | None] = []
        self.stored: dict[str, list[dict[str, Any]]] = {}
        self.samples: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def is_down(self) -> bool:
        return self.down

    def send(
        self,
        app: str,
        instance: str,
        samples: list[dict[str, Any]],
        *,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        with self.lock:
            self.attempts.append(idempotency_key)
            if self.is_down():
                raise TransportError(True, "connection refused")
            self.store(idempotency_key, samples)
        return {"accepted": len(samples), "actions": []}

    def store(self, key: str | None, samples: list[dict[str, Any]]) -> None:
        if key is None or key not in self.stored:
            self.stored[key or f"unkeyed-{len(self.stored)}"] = samples
            self.samples.extend(samples)

    def predictions(self) -> list[float]:
        return [s["prediction"] for s in self.samples]

    def transport(self) -> InMemoryTransport:
        return InMemoryTransport(self.send)


class DownUntil(Server):
    """Down until the fake clock reaches ``up_at``."""

    def __init__(self, time: FakeTime, up_at: float) -> None:
        super().__init__()
        self.time = time
        self.up_at = up_at

    def is_down(self) -> bool:
        return self.time.now < self.up_at


@contextmanager
def probe_for(server: Server, **options: Any) -> Iterator[Probe]:
    """A probe that sends on flush and close only (unless ``options`` say otherwise)."""
    probe = Probe("traffic", server.transport(), **{"flush_interval": 60.0, **options})
    try:
        yield probe
    finally:
        probe.close(timeout=WAIT)


def on_fake_time(fake: FakeTime) -> dict[str, Any]:
    return {"sleep": fake.sleep, "monotonic": fake.monotonic}


def record(probe: Probe, values: range) -> None:
    for i in values:
        probe.record("svm", prediction=float(i))


def wait_until(condition: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.002)


# -- riding out an outage --------------------------------------------------------------------


def test_by_default_a_minute_long_outage_loses_nothing(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeTime()
    server = DownUntil(fake, up_at=65.0)
    with probe_for(server, **on_fake_time(fake)) as probe:
        record(probe, range(10))
        assert probe.flush(timeout=WAIT)
    assert server.predictions() == [float(i) for i in range(10)]
    assert probe.stats.snapshot() == ProbeStats(sent=10, batches=1)
    assert fake.now >= 65.0
    assert "answers again after 6" in caplog.text  # one warning per outage, not per attempt


def test_the_backoff_doubles_to_a_cap_with_jitter() -> None:
    fake = FakeTime()
    server = DownUntil(fake, up_at=65.0)
    with probe_for(server, backoff=0.05, max_backoff=5.0, **on_fake_time(fake)) as probe:
        record(probe, range(3))
        assert probe.flush(timeout=WAIT)
    for failures, slept in enumerate(fake.sleeps, start=1):
        ceiling = min(5.0, 0.05 * 2 ** (failures - 1))
        assert ceiling / 2 <= slept <= ceiling
    capped = fake.sleeps[8:]
    assert len(set(capped)) == len(capped)  # jittered: no two probes retry in lockstep
    # Waits of at least half the cap mean a long outage costs few requests: at most
    # 9 attempts for the first 3.2 s of doubling, then one per 2.5 s at worst.
    assert len(server.attempts) <= 9 + 65 / 2.5


def test_an_outage_past_retry_for_drops_and_counts_without_a_spool(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeTime()
    server = DownUntil(fake, up_at=float("inf"))
    with probe_for(server, retry_for=30.0, **on_fake_time(fake)) as probe:
        record(probe, range(5))
        assert probe.flush(timeout=WAIT)
        assert 30.0 <= fake.now <= 35.0 and probe.stats.dropped == 5
        assert re.search(
            r"dropped a batch of 5 samples after \d+ attempts over 3\d\.\d s", caplog.text
        )
        # Still the same outage: the next batch gets one attempt, not another 30 s.
        attempts = len(server.attempts)
        record(probe, range(5, 9))
        assert probe.flush(timeout=WAIT)
        assert len(server.attempts) == attempts + 1 and probe.stats.dropped == 9
        server.up_at = 0.0  # the server is back
        record(probe, range(9, 12))
        assert probe.flush(timeout=WAIT)
    assert server.predictions() == [9.0, 10.0, 11.0]
    assert probe.stats.snapshot() == ProbeStats(sent=3, dropped=9, batches=1)
    assert "answers again after" in caplog.text and "9 samples lost" in caplog.text


def test_a_rejection_ends_the_outage_and_is_not_retried() -> None:
    fake = FakeTime()
    failures = [TransportError(True, "503"), TransportError(False, "422: bad", status=422)]

    def send(app: str, instance: str, samples: list[dict[str, Any]]) -> dict[str, Any]:
        if failures:
            raise failures.pop(0)
        return {"accepted": len(samples), "actions": []}

    probe = Probe("traffic", InMemoryTransport(send), flush_interval=60.0, **on_fake_time(fake))
    record(probe, range(4))
    assert probe.flush(timeout=WAIT)
    record(probe, range(2))
    assert probe.close(timeout=WAIT)
    assert probe.stats.snapshot() == ProbeStats(sent=2, rejected=4, batches=1)
    assert len(fake.sleeps) == 1


def test_max_attempts_still_bounds_the_attempts_but_is_deprecated() -> None:
    fake = FakeTime()
    server = DownUntil(fake, up_at=float("inf"))
    with pytest.warns(DeprecationWarning, match="max_attempts"):
        probe = Probe("traffic", server.transport(), max_attempts=3, **on_fake_time(fake))
    record(probe, range(2))
    assert probe.flush(timeout=WAIT)
    assert len(server.attempts) == 3 and probe.stats.dropped == 2
    probe.close(timeout=WAIT)


def test_describe_version_gives_up_soon_since_the_caller_waits() -> None:
    fake = FakeTime()

    def describe(app: str, model: str, version: int, description: dict[str, Any]) -> None:
        raise TransportError(True, "connection refused")

    transport = InMemoryTransport(Server().send, describe=describe)
    with (
        Probe("traffic", transport, flush_interval=60.0, **on_fake_time(fake)) as probe,
        pytest.raises(TransportError, match="refused"),
    ):
        probe.describe_version("svm", 1, fingerprint=[0.5])
    assert DESCRIBE_RETRY_FOR <= fake.now <= DESCRIBE_RETRY_FOR + probe.max_backoff


def test_an_action_result_is_retried_through_an_outage() -> None:
    fake = FakeTime()
    reports: list[int] = []

    def report(app: str, action_id: int, body: dict[str, Any]) -> None:
        if fake.now < 40.0:
            raise TransportError(True, "502")
        reports.append(action_id)

    def send(app: str, instance: str, samples: list[dict[str, Any]]) -> dict[str, Any]:
        return {"accepted": len(samples), "actions": [{"id": 8, "kind": "retrain"}]}

    with Probe(
        "traffic", InMemoryTransport(send, report), flush_interval=60.0, **on_fake_time(fake)
    ) as probe:
        probe.record("svm")
        assert probe.flush(timeout=WAIT)
    assert reports == [8] and fake.now >= 40.0


# -- closing during an outage ----------------------------------------------------------------


def test_close_stops_retrying_at_its_timeout_and_counts_the_loss(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = Server()
    server.down = True
    probe = Probe("traffic", server.transport(), flush_interval=60.0, retry_for=3600.0)
    record(probe, range(10))
    assert probe.close(timeout=1.0)  # the sender finished in time: it did not wait an hour
    assert probe.stats.snapshot() == ProbeStats(dropped=10)
    assert "closed before the server answered" in caplog.text


def test_close_without_a_timeout_waits_retry_for_at_most(tmp_path: Path) -> None:
    fake = FakeTime()
    server = DownUntil(fake, up_at=float("inf"))
    probe = Probe(
        "traffic",
        server.transport(),
        batch_size=4,
        flush_interval=60.0,
        retry_for=30.0,
        spool_dir=tmp_path,
        **on_fake_time(fake),
    )
    record(probe, range(10))
    assert probe.close()
    assert 30.0 <= fake.now <= 35.0
    assert probe.stats.snapshot() == ProbeStats(spooled=10)
    assert len(list(tmp_path.glob("*.json"))) == 3


# -- the spool -------------------------------------------------------------------------------


def test_a_spool_outlives_the_probe_and_is_sent_oldest_first_under_the_same_keys(
    tmp_path: Path,
) -> None:
    down = Server()
    down.down = True
    first = Probe(
        "traffic", down.transport(), batch_size=4, flush_interval=60.0, spool_dir=tmp_path
    )
    record(first, range(10))
    assert first.close(timeout=1.0)
    assert first.stats.snapshot() == ProbeStats(spooled=10)
    tried = [key for key in dict.fromkeys(down.attempts) if key is not None]
    assert tried and all(KEY.match(key) for key in tried)

    up = Server()
    # A new process: its own samples come after the spooled ones.
    with probe_for(up, batch_size=4, spool_dir=tmp_path) as second:
        record(second, range(10, 13))
        assert second.flush(timeout=WAIT)
    assert up.predictions() == [float(i) for i in range(13)]
    assert list(up.stored)[: len(tried)] == tried  # what was tried is re-sent under its key
    assert len(set(up.stored)) == 4  # three batches from the spool, one new
    assert second.stats.snapshot() == ProbeStats(sent=13, batches=4)
    assert not list(tmp_path.iterdir())


def test_a_previous_runs_spool_is_sent_without_waiting_for_the_interval(tmp_path: Path) -> None:
    from harmonia.sdk._spool import Spool

    samples = [{"model": "svm", "prediction": 1.0}]
    Spool(tmp_path, 10_000, lambda count, reason: None).put(
        Batch(0, "traffic", "edge-0", "k-1", samples)
    )
    server = Server()
    with probe_for(server, spool_dir=tmp_path):
        wait_until(lambda: server.samples, "the spooled batch")
    assert server.stored == {"k-1": samples}


def test_batches_queued_behind_a_failing_one_go_to_the_spool(tmp_path: Path) -> None:
    server = Server()
    server.down = True
    with probe_for(
        server, batch_size=5, max_backoff=0.01, backoff=0.001, spool_dir=tmp_path
    ) as probe:
        record(probe, range(5))
        probe.flush(timeout=0.01)  # the sender now holds 0-4 and retries them
        wait_until(lambda: server.attempts, "the first attempt")
        record(probe, range(5, 20))
        wait_until(lambda: probe.stats.spooled == 15, "batches spilled to the spool")
        assert len(list(tmp_path.glob("*.json"))) == 3
        server.down = False
        assert probe.flush(timeout=WAIT)
    assert server.predictions() == [float(i) for i in range(20)]
    assert probe.stats.snapshot() == ProbeStats(sent=20, batches=4, spooled=15)
    assert not list(tmp_path.iterdir())


def test_a_full_spool_drops_its_oldest_batches_and_counts_them(tmp_path: Path) -> None:
    server = Server()
    server.down = True
    sample = to_wire(
        ("svm", None, 1.5e9, None, None, None, 10.0, None, None, None, None), "default"
    )
    one = _encode(Batch(0, "traffic", "default", "0" * 32, [sample] * 5))
    with probe_for(
        server,
        batch_size=5,
        max_backoff=0.01,
        backoff=0.001,
        spool_dir=tmp_path,
        spool_max_bytes=int(len(one) * 2.5),
        clock=lambda: 1.5e9,
    ) as probe:
        record(probe, range(5))
        probe.flush(timeout=0.01)
        wait_until(lambda: server.attempts, "the first attempt")
        record(probe, range(5, 30))  # five more batches; the spool holds two
        wait_until(lambda: probe.stats.spooled == 25, "batches spilled to the spool")
        server.down = False
        assert probe.flush(timeout=WAIT)
    expected = [*range(5), *range(20, 30)]
    assert server.predictions() == [float(i) for i in expected]
    assert probe.stats.snapshot() == ProbeStats(sent=15, dropped=15, batches=3, spooled=25)


# -- idempotency keys ------------------------------------------------------------------------


def test_every_retry_of_a_batch_carries_its_key_and_batches_differ() -> None:
    fake = FakeTime()
    server = DownUntil(fake, up_at=1.0)
    with probe_for(server, batch_size=3, **on_fake_time(fake)) as probe:
        record(probe, range(6))
        assert probe.flush(timeout=WAIT)
    first, *retries = server.attempts[:-1]
    assert retries and all(key == first for key in retries)
    assert server.attempts[-1] != first and len(server.stored) == 2
    assert all(KEY.match(str(key)) for key in server.attempts)


def test_a_lost_reply_does_not_store_the_batch_twice() -> None:
    server = Server()
    lost = [True]

    def send(app: str, instance: str, samples: list[dict[str, Any]], **options: Any) -> Any:
        reply = server.send(app, instance, samples, **options)
        if lost.pop() if lost else False:  # stored, but the reply never arrives
            raise TransportError(True, "read timeout")
        return reply

    with Probe("traffic", InMemoryTransport(send), flush_interval=60.0, backoff=0.001) as probe:
        record(probe, range(4))
        assert probe.flush(timeout=WAIT)
    assert len(server.attempts) == 2 and server.attempts[0] == server.attempts[1]
    assert server.predictions() == [0.0, 1.0, 2.0, 3.0]
    assert probe.stats.snapshot() == ProbeStats(sent=4, batches=1)


def test_a_send_handler_gets_the_key_only_if_it_takes_one() -> None:
    seen: list[tuple[str, Any]] = []

    def old(app: str, instance: str, samples: list[dict[str, Any]]) -> dict[str, Any]:
        seen.append(("old", None))
        return {"accepted": len(samples)}

    def new(app: str, instance: str, samples: list[Any], *, idempotency_key: str | None) -> Any:
        seen.append(("new", idempotency_key))
        return {"accepted": len(samples)}

    def loose(*args: Any, **options: Any) -> dict[str, Any]:
        seen.append(("loose", options.get("idempotency_key")))
        return {"accepted": 1}

    for handler in (old, new, loose):
        assert InMemoryTransport(handler).send("traffic", "i", [], idempotency_key="k1") == []
    assert seen == [("old", None), ("new", "k1"), ("loose", "k1")]


class RecordingBroker(BrokerTransport):
    """A broker transport whose requests are recorded instead of published."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, Any], dict[str, Any]]] = []

    def close(self) -> None:
        pass

    def _call(self, app: str, call: str, body: dict[str, Any], **extra: Any) -> Any:
        self.requests.append((call, body, extra))
        return {"accepted": len(body.get("samples", [])), "actions": []}


def test_brokers_carry_the_key_in_the_envelope() -> None:
    broker = RecordingBroker()
    broker.send("traffic", "i-1", [{"model": "svm"}], idempotency_key="k-7")
    broker.send("traffic", "i-1", [{"model": "svm"}])
    keyed, unkeyed = broker.requests
    assert keyed == (
        "telemetry",
        {"instance": "i-1", "columns": {"model": ["svm"]}},
        {"idempotency_key": "k-7"},
    )
    assert unkeyed[2] == {}  # no key, no field: an older server forbids unknown fields
    envelope = json.loads(request_payload(1, "tok", "telemetry", keyed[1], **keyed[2]))
    assert envelope["idempotency_key"] == "k-7" and envelope["token"] == "tok"


class OlderServerBroker(RecordingBroker):
    """A broker to a server older than columnar batches: it refuses them as that server's
    bridge does (a 422 naming ``columns`` as an extra input)."""

    def _call(self, app: str, call: str, body: dict[str, Any], **extra: Any) -> Any:
        self.requests.append((call, body, extra))
        if "columns" in body:
            detail = [{"field": "columns", "reason": "Extra inputs are not permitted"}]
            return reply_body({"id": 1, "status": 422, "detail": detail}, call)
        return {"accepted": len(body["samples"]), "actions": []}


def test_brokers_send_columns_and_fall_back_to_rows_for_an_older_server() -> None:
    broker = OlderServerBroker()
    broker.send("traffic", "i-1", [{"model": "svm"}], idempotency_key="k-1")
    broker.send("traffic", "i-1", [{"model": "lstm"}], idempotency_key="k-2")
    forms = [(next(iter(set(body) - {"instance"})), extra) for _, body, extra in broker.requests]
    # refused whole, the first batch goes again as rows under its key; later ones as rows
    assert forms == [
        ("columns", {"idempotency_key": "k-1"}),
        ("samples", {"idempotency_key": "k-1"}),
        ("samples", {"idempotency_key": "k-2"}),
    ]
    assert broker.columns is False and BrokerTransport.columns is True


class KeylessTransport:
    """A third-party transport written before idempotency keys."""

    def __init__(self) -> None:
        self.batches: list[list[dict[str, Any]]] = []

    def send(self, app: str, instance: str, samples: list[dict[str, Any]]) -> list[ActionMessage]:
        self.batches.append(samples)
        return []

    def report(self, app: str, action_id: int, status: str, reason: str) -> None:
        pass

    def describe_version(
        self, app: str, model: str, version: int, description: dict[str, Any]
    ) -> None:
        pass


def test_a_transport_without_keys_still_works_with_a_warning() -> None:
    transport = KeylessTransport()
    with pytest.warns(DeprecationWarning, match="idempotency_key"):
        probe = Probe("traffic", transport, flush_interval=60.0)
    probe.record("svm")
    assert probe.close(timeout=WAIT)
    assert len(transport.batches) == 1 and probe.stats.sent == 1


@pytest.mark.parametrize("options", [{"backoff": 0.0}, {"max_backoff": 0.0}, {"retry_for": -1.0}])
def test_bad_retry_options_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Probe("traffic", Server().transport(), **options)


def test_nothing_is_logged_per_attempt_above_debug(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeTime()
    caplog.set_level(logging.DEBUG, logger="harmonia.sdk")
    with probe_for(DownUntil(fake, up_at=30.0), **on_fake_time(fake)) as probe:
        record(probe, range(2))
        assert probe.flush(timeout=WAIT)
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(loud) == 2  # the outage begins, the outage ends
