"""A probe streaming telemetry through a server restart (issue 10, finding 14).

The server is stopped for about four seconds while the probe records 2,000 samples, then a
new server comes up on the same port over the same store. The docs promise that the
probe's buffer absorbs outages: every sample must be stored, each exactly once. And a
managed process that exits while the server is down leaves its samples in the spool, for
the next run to send.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from harmonia.sdk import HTTPTransport, Probe
from harmonia.server.background import BackgroundServer
from harmonia.store import Store, sqlite_url
from support import free_port

ADMIN = "outage-admin"
SAMPLES = 2_000
OUTAGE_S = 4.0
PACE_S = 0.003
"""Time between two samples: the 2,000 take about six seconds, the outage falls inside."""


def _register(url: str) -> str:
    reply = httpx.post(
        f"{url}/api/v1/apps",
        json={"name": "traffic", "owner": "team", "models": ["lstm"]},
        headers={"Authorization": f"Bearer {ADMIN}"},
    )
    reply.raise_for_status()
    return str(reply.json()["token"])


def _restart(first: BackgroundServer, then: BackgroundServer, down_for: float) -> None:
    """Stop ``first`` (its requests in flight finish), wait ``down_for`` s, start ``then``."""
    first.__exit__(None, None, None)
    time.sleep(down_for)
    then.__enter__()


def test_a_server_restart_loses_no_sample(tmp_path: Path) -> None:
    store = Store(sqlite_url(tmp_path))
    port = free_port()
    first = BackgroundServer(store, ADMIN, port=port, data_dir=tmp_path)
    second = BackgroundServer(store, ADMIN, port=port, data_dir=tmp_path)
    url = first.__enter__()
    try:
        token = _register(url)
        outage = threading.Thread(target=_restart, args=(first, second, OUTAGE_S))
        with HTTPTransport(url, token, timeout=2.0) as transport:
            probe = Probe("traffic", transport, batch_size=50, flush_interval=0.05)
            for i in range(SAMPLES):
                if i == SAMPLES // 5:
                    outage.start()
                probe.record("lstm", version=1, prediction=float(i), ts=float(i))
                time.sleep(PACE_S)
            outage.join()
            assert probe.close(timeout=120.0)
        stats = probe.stats.snapshot()
        assert (stats.sent, stats.dropped, stats.rejected) == (SAMPLES, 0, 0)
        assert store.count_telemetry(store.app("traffic")) == SAMPLES
    finally:
        second.__exit__(None, None, None)
        store.close()


EXITING_SYSTEM = """
import sys
from harmonia.sdk import HTTPTransport, Probe

url, token, spool = sys.argv[1:]
probe = Probe(
    "traffic", HTTPTransport(url, token, timeout=1.0), batch_size=50, flush_interval=0.05,
    spool_dir=spool, exit_timeout=2.0,
)
for i in range(500):
    probe.record("lstm", version=1, prediction=float(i), ts=float(i))
"""
"""A managed process that records 500 samples and exits (the probe closes at exit)."""


def test_samples_of_a_process_that_exits_during_an_outage_reach_the_server_later(
    tmp_path: Path,
) -> None:
    store = Store(sqlite_url(tmp_path / "data"))
    port = free_port()
    spool = tmp_path / "spool"
    with BackgroundServer(store, ADMIN, port=port, data_dir=tmp_path) as url:
        token = _register(url)
    subprocess.run(
        [sys.executable, "-c", EXITING_SYSTEM, url, token, str(spool)],
        check=True,
        timeout=60,
        capture_output=True,
    )
    assert len(list(spool.glob("*.json"))) == 10  # the server was down: all of it spooled
    try:
        with (
            BackgroundServer(store, ADMIN, port=port, data_dir=tmp_path),
            HTTPTransport(url, token) as transport,
        ):
            probe = Probe("traffic", transport, spool_dir=spool)  # the next run
            assert probe.close(timeout=60.0)
        assert probe.stats.sent == 500 and not list(spool.iterdir())
        assert store.count_telemetry(store.app("traffic")) == 500
    finally:
        store.close()


def test_a_batch_sent_again_under_its_key_is_stored_once(tmp_path: Path) -> None:
    """What the probe relies on when it retries after a lost reply (finding 12)."""
    store = Store(sqlite_url(tmp_path))
    samples = [{"model": "lstm", "model_version": 1, "ts": float(i)} for i in range(5)]
    try:
        with (
            BackgroundServer(store, ADMIN, data_dir=tmp_path) as url,
            HTTPTransport(url, _register(url)) as transport,
        ):
            for _ in range(3):
                transport.send("traffic", "i-1", samples, idempotency_key="batch-1")
            transport.send("traffic", "i-1", samples, idempotency_key="batch-2")
        assert store.count_telemetry(store.app("traffic")) == 10
    finally:
        store.close()
