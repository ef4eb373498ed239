"""Crash recovery: ``kill -9`` in the middle of a telemetry stream, five times, on SQLite and on
PostgreSQL, and nothing acknowledged is lost, nothing is stored twice, no action is stranded.

A real ``harmonia serve`` process runs on one data directory (or database). Two clients send
numbered batches of samples, each sample with its own ``ts``, one client per app: a pull app
(actions come back in telemetry replies) and a push app (actions are POSTed to an effector the
test runs). Each batch carries its own ``Idempotency-Key`` and is retried with the same key
and the same body on connection errors and 5xx, as the sdk retries, until it is acknowledged.
At random moments the server is killed with SIGKILL and started again on the same data.

A batch may be stored and its reply lost in the kill: its retry must then be answered from
the store, not stored again. An action may be decided and stored and the kill come before it
is pushed: the restarted server must push it. Hence the assertions at the end: the samples
stored are exactly the samples acknowledged, each once, and no action is left ``pending``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from databases import BACKENDS, fresh_postgres

from support import free_port

ADMIN = "crash-admin"
ROUNDS = 5
BATCH = 20  # samples per batch
#: every window of 10 samples reports an error of 1.0: each one violates the boundary, so
#: actions are decided all along the stream (one at a time: the loop waits for telemetry
#: to show the last one applied before it decides the same again)
POLICY = """
policy: {name}
system: {name}
models: [linear, svm, lstm]
initial_model: lstm
window: 10 samples
strategy: switch
boundaries:
  - when: mean(error) > 0.5
    then: switch_model
"""
#: a server that has not come back by then is broken, not slow
GIVE_UP_S = 60.0


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """Empty for SQLite in the data directory; for PostgreSQL, a database of its own, created
    for the test and dropped after it (skipped where there is none, but CI must run it)."""
    if request.param == "sqlite":
        yield ""
        return
    with fresh_postgres() as url:
        yield url


class Server:
    """``harmonia serve`` as a process that can be killed and started again on the same data
    and the same port (so that clients retry one URL, as theirs would)."""

    def __init__(self, data_dir: Path, database_url: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir / "server.log"
        self.env = {
            **os.environ,
            "HARMONIA_DATA_DIR": str(data_dir),
            "HARMONIA_DATABASE_URL": database_url,
            "HARMONIA_ADMIN_TOKEN": ADMIN,
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "harmonia.cli", "serve", "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.url}/healthz", timeout=1).raise_for_status()
                return
            except httpx.HTTPError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.05)
        raise RuntimeError(f"the server did not start:\n{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, nothing is flushed but what was committed."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


class Effector:
    """The push app's effector: applies every action it gets and remembers the model the
    last switch asked for, which the push client then reports serving."""

    def __init__(self) -> None:
        self.model = "lstm"
        self.received: list[int] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                action = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.received.append(action["id"])
                if action.get("kind") == "switch_model" and action.get("model"):
                    outer.model = action["model"]
                body = json.dumps({"status": "applied", "reason": "switched"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/effector"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass(frozen=True)
class Batch:
    """One batch as it goes on the wire, every attempt the same."""

    first: int  # the ts of its first sample
    body: bytes
    headers: dict[str, str]


class Stream:
    """One app's client: numbered batches of uniquely numbered samples, each batch sent under
    its own idempotency key and retried, same key and same body, until it is acknowledged."""

    def __init__(self, url: str, app: str, token: str, effector: Effector | None = None) -> None:
        self.url = url
        self.app = app
        self.token = token
        #: what the system serves: switched by the effector (push) or by replies (pull)
        self.effector = effector
        self.model = "lstm"
        self.run_id = secrets.token_hex(4)  # keys from an earlier test run never collide
        self.batches = 0
        self.acknowledged: list[int] = []  # the ts of every sample acknowledged
        self.retried = 0  # batches that needed more than one attempt
        self.failed_attempts = 0  # attempts that got no answer or a 5xx
        self.error: BaseException | None = None

    @property
    def path(self) -> str:
        return f"/api/v1/apps/{self.app}/telemetry"

    def next_batch(self) -> Batch:
        """The next batch: ``BATCH`` samples numbered on from the last acknowledged, under a
        key of its own, reporting the model the system serves now."""
        first = len(self.acknowledged)
        model = self.effector.model if self.effector is not None else self.model
        samples = [
            {"model": model, "model_version": 1, "ts": float(ts), "metrics": {"error": 1.0}}
            for ts in range(first, first + BATCH)
        ]
        headers = {
            "Authorization": f"Bearer {self.token}",
            "Content-Type": "application/json",
            "Idempotency-Key": f"crash-{self.run_id}-{self.app}-{self.batches}",
        }
        body = json.dumps({"instance": "i-1", "samples": samples}).encode()
        return Batch(first, body, headers)

    def send(self, client: httpx.Client, batch: Batch) -> None:
        """Send ``batch`` until the server acknowledges it (2xx), retrying the same body under
        the same key on connection errors and 5xx; a 4xx is a bug."""
        deadline = time.monotonic() + GIVE_UP_S
        attempts = 0
        while True:
            attempts += 1
            try:
                reply = client.post(self.url + self.path, content=batch.body, headers=batch.headers)
            except httpx.TransportError:
                reply = None
            if reply is not None and reply.status_code < 500:
                break
            self.failed_attempts += 1
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.app}: batch {self.batches} unanswered for {GIVE_UP_S} s")
            time.sleep(0.05)
        if not reply.is_success:
            raise AssertionError(f"{self.app}: batch {self.batches} refused: {reply.text}")
        self.retried += attempts > 1
        self.batches += 1
        self.acknowledged.extend(range(batch.first, batch.first + BATCH))
        for action in reply.json()["actions"]:
            if action["kind"] == "switch_model" and action.get("model"):
                self.model = action["model"]

    def send_batch(self, client: httpx.Client) -> None:
        self.send(client, self.next_batch())

    def run(self, stop: threading.Event) -> None:
        """Send batches back to back (a few ms apart) until ``stop``; an error is kept for the
        test to raise."""
        try:
            with httpx.Client(timeout=10) as client:
                while not stop.is_set():
                    self.send_batch(client)
                    time.sleep(0.005)
        except BaseException as error:
            self.error = error


def register(server: Server, name: str, effector_url: str | None) -> str:
    admin = {"Authorization": f"Bearer {ADMIN}"}
    reply = httpx.post(
        f"{server.url}/api/v1/apps",
        json={
            "name": name,
            "owner": "tests",
            "models": ["linear", "svm", "lstm"],
            "effector_url": effector_url,
        },
        headers=admin,
        timeout=30,
    )
    reply.raise_for_status()
    policy = POLICY.format(name=name)
    httpx.put(
        f"{server.url}/api/v1/apps/{name}/policy", content=policy, headers=admin, timeout=30
    ).raise_for_status()
    return str(reply.json()["token"])


def stored_ts(server: Server, stream: Stream) -> Counter[int]:
    """How many times each sample (by its ts) is stored, read back through the CSV export."""
    reply = httpx.get(
        f"{server.url}/api/v1/apps/{stream.app}/telemetry.csv",
        headers={"Authorization": f"Bearer {stream.token}"},
        timeout=30,
    )
    reply.raise_for_status()
    return Counter(int(float(row["ts"])) for row in csv.DictReader(io.StringIO(reply.text)))


def pending(server: Server, app: str) -> list[dict[str, Any]]:
    reply = httpx.get(
        f"{server.url}/api/v1/apps/{app}/actions", params={"status": "pending"}, timeout=30
    )
    reply.raise_for_status()
    return list(reply.json())


def check(server: Server, stream: Stream) -> dict[str, Any]:
    """What is wrong with one app's data after the kills: samples stored twice, acknowledged
    samples lost, samples stored that were never acknowledged, actions left pending."""
    acknowledged = set(stream.acknowledged)
    stored = stored_ts(server, stream)
    found = {
        "samples stored more than once": sorted(ts for ts, n in stored.items() if n > 1),
        "acknowledged samples lost": sorted(acknowledged - set(stored)),
        "samples stored but never acknowledged": sorted(set(stored) - acknowledged),
        "actions left pending": [a["id"] for a in pending(server, stream.app)],
    }
    problems: dict[str, Any] = {f"{stream.app}: {k}": _brief(v) for k, v in found.items() if v}
    if problems:
        problems[f"{stream.app}: batches acknowledged, of them retried"] = (
            stream.batches,
            stream.retried,
        )
    return problems


def _brief(values: list[int]) -> str:
    """A long list of sample numbers, shortened for an assertion message."""
    shown = ", ".join(map(str, values[:10]))
    return f"{len(values)}: {shown}{', ...' if len(values) > 10 else ''}"


@pytest.mark.slow
def test_kill_9_mid_stream_loses_nothing_and_stores_nothing_twice(
    tmp_path: Path, database_url: str
) -> None:
    """Five SIGKILLs at random moments while both clients stream; then every acknowledged
    sample is stored exactly once and no action of either app is left pending. The seed of
    the kill times is in the failure message (``HARMONIA_CRASH_SEED`` repeats those times)."""
    seed = int(os.environ.get("HARMONIA_CRASH_SEED") or random.randrange(2**32))
    rng = random.Random(seed)
    server = Server(tmp_path, database_url)
    effector = Effector()
    try:
        server.start()
        streams = [
            Stream(server.url, "pull", register(server, "pull", None)),
            Stream(server.url, "push", register(server, "push", effector.url), effector),
        ]
        stop = threading.Event()
        threads = [threading.Thread(target=s.run, args=(stop,), daemon=True) for s in streams]
        for thread in threads:
            thread.start()
        for _ in range(ROUNDS):
            time.sleep(rng.uniform(0.2, 0.8))  # batches and pushes are on their way
            server.kill()
            time.sleep(rng.uniform(0.0, 0.3))  # the clients find nobody there meanwhile
            server.start()
        time.sleep(0.5)
        stop.set()
        for thread in threads:
            thread.join(timeout=GIVE_UP_S + 10)
        for stream in streams:
            if stream.error is not None:
                raise stream.error
        # Pull delivery: pending actions leave in the next reply. Push delivery: the restarted
        # server must push what it decided before the kill but never sent.
        with httpx.Client(timeout=10) as client:
            streams[0].send_batch(client)
        deadline = time.monotonic() + 10
        while pending(server, "push") and time.monotonic() < deadline:
            time.sleep(0.2)

        problems: dict[str, Any] = {}
        for stream in streams:
            # the test's own check: every kill caught this client mid-stream
            assert stream.failed_attempts >= ROUNDS, (stream.app, stream.failed_attempts)
            problems.update(check(server, stream))
    finally:
        server.stop()
        effector.close()
    assert not problems, {"seed (HARMONIA_CRASH_SEED)": seed, **problems}


def test_a_batch_retried_after_its_reply_was_lost_is_stored_once(
    tmp_path: Path, database_url: str
) -> None:
    """The crash test's duplicate, without the luck of a kill landing between a batch's
    commit and its reply: the batch is sent, stored, and its reply never read; the client
    retries it under the same key, as it would after a dropped connection."""
    server = Server(tmp_path, database_url)
    try:
        server.start()
        stream = Stream(server.url, "pull", register(server, "pull", None))
        batch = stream.next_batch()
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            head = f"POST {stream.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            head += "".join(f"{k}: {v}\r\n" for k, v in batch.headers.items())
            head += f"Content-Length: {len(batch.body)}\r\n\r\n"
            sock.sendall(head.encode() + batch.body)
            deadline = time.monotonic() + 10
            while not stored_ts(server, stream) and time.monotonic() < deadline:
                time.sleep(0.05)
        # the connection is gone with its reply unread: the client knows nothing was acknowledged
        with httpx.Client(timeout=10) as client:
            stream.send(client, batch)
            stream.send_batch(client)  # and the stream goes on
        problems = check(server, stream)
    finally:
        server.stop()
    assert not problems, problems
