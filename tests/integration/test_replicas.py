"""Replicas: several ``harmonia serve`` processes on one PostgreSQL database, each live loop
owned by one of them through a lease with a fencing token.

The main test runs three replicas on loopback, streams telemetry to them in turn (as a load
balancer would) with a policy that decides an action every few windows, kills the replica
that owns the app's loop with SIGKILL mid-stream, and checks that every batch acknowledged
is stored exactly once, that another replica took the loop over and decided again within
5 s, and that no window was decided on twice. The others check the pieces: a stale owner's
writes are refused, a replica that does not own the loop hands its samples to the owner,
whose decisions come back in any replica's replies, event-stream subscribers of one
replica see the events of another, and a paused owner resumes without writing.

The tests that start replicas take 12-25 s each on an idle 2-core machine (most of it the
replicas starting), twice that under load.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from databases import fresh_postgres
from sqlalchemy import create_engine, text

from harmonia.core.application import Application
from harmonia.server.leases import ReplicaOptions
from harmonia.server.service import Server
from harmonia.store import Store
from harmonia.store.leases import CONTRACT_LEASE, LeaseLost
from support import free_port

ADMIN = "replicas-admin"
BATCH = 20
#: every window of 10 samples violates the boundary: the loop decides a switch each time
#: the telemetry shows the last one applied (one action in flight at a time)
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
#: the lease time the replicas run with (the default): takeover within it plus a look
LEASE_S = 3.0
TAKEOVER_LIMIT_S = 5.0
#: how often replicas look at the leases and their inboxes (at most)
LOOK_S = 1.0


class Replica:
    """One ``harmonia serve`` process, replica ``name`` over the database at ``url``."""

    def __init__(self, name: str, url: str, data_dir: Path) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        data_dir.mkdir(parents=True, exist_ok=True)
        self.log = data_dir / "server.log"
        env = {
            **os.environ,
            "HARMONIA_DATA_DIR": str(data_dir),
            "HARMONIA_DATABASE_URL": url,
            "HARMONIA_ADMIN_TOKEN": ADMIN,
            "HARMONIA_REPLICA_ID": name,
            "HARMONIA_LEASE_SECONDS": str(LEASE_S),
        }
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "harmonia.cli", "serve", "--port", str(self.port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.url}/healthz", timeout=1).raise_for_status()
                return
            except httpx.HTTPError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.1)
        raise RuntimeError(f"replica {self.name} did not start:\n{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


def start_replicas(url: str, tmp_path: Path, count: int) -> list[Replica]:
    replicas = [Replica(f"r{i}", url, tmp_path / f"r{i}") for i in range(count)]
    for replica in replicas:
        replica.wait_ready()
    return replicas


def register(replica: Replica, name: str) -> str:
    admin = {"Authorization": f"Bearer {ADMIN}"}
    reply = httpx.post(
        f"{replica.url}/api/v1/apps",
        json={"name": name, "owner": "tests", "models": ["linear", "svm", "lstm"]},
        headers=admin,
        timeout=30,
    )
    reply.raise_for_status()
    httpx.put(
        f"{replica.url}/api/v1/apps/{name}/policy",
        content=POLICY.format(name=name),
        headers=admin,
        timeout=30,
    ).raise_for_status()
    return str(reply.json()["token"])


class Stream:
    """A pull client behind a load balancer: numbered batches of uniquely numbered samples,
    each under its own idempotency key, sent to the replicas in turn; a batch that gets no
    answer (or a 5xx) goes to the next replica, same key and body, until one acknowledges
    it. It serves the model the last switch in a reply asked for."""

    def __init__(
        self, replicas: list[Replica], app: str, token: str, timeout: float = 10.0
    ) -> None:
        self.replicas = replicas
        self.timeout = timeout
        self.app = app
        self.token = token
        self.model = "lstm"
        self.run_id = secrets.token_hex(4)
        self.turn = 0
        self.batches = 0
        self.acknowledged: list[int] = []
        self.failed_attempts = 0
        self.actions_received: list[int] = []
        self.error: BaseException | None = None

    def send_batch(self, client: httpx.Client, only: Replica | None = None) -> dict[str, Any]:
        first = len(self.acknowledged)
        samples = [
            {"model": self.model, "model_version": 1, "ts": float(ts), "metrics": {"error": 1.0}}
            for ts in range(first, first + BATCH)
        ]
        body = orjson.dumps({"instance": "i-1", "samples": samples})
        headers = {
            "Authorization": f"Bearer {self.token}",
            "Content-Type": "application/json",
            "Idempotency-Key": f"rep-{self.run_id}-{self.batches}",
        }
        deadline = time.monotonic() + 60
        while True:
            replica = only or self.replicas[self.turn % len(self.replicas)]
            self.turn += 1
            try:
                reply = client.post(
                    f"{replica.url}/api/v1/apps/{self.app}/telemetry",
                    content=body,
                    headers=headers,
                )
            except httpx.TransportError:
                reply = None
            if reply is not None and reply.status_code < 500:
                break
            self.failed_attempts += 1
            if time.monotonic() > deadline:
                raise RuntimeError(f"batch {self.batches} unanswered for 60 s")
            time.sleep(0.02)
        if not reply.is_success:
            raise AssertionError(f"batch {self.batches} refused: {reply.text}")
        self.batches += 1
        self.acknowledged.extend(range(first, first + BATCH))
        answer: dict[str, Any] = reply.json()
        for action in answer["actions"]:
            self.actions_received.append(action["id"])
            if action["kind"] == "switch_model" and action.get("model"):
                self.model = action["model"]
        return answer

    def run(self, stop: threading.Event) -> None:
        try:
            with httpx.Client(timeout=self.timeout) as client:
                while not stop.is_set():
                    self.send_batch(client)
                    time.sleep(0.01)
        except BaseException as error:
            self.error = error


def stream_for(stream: Stream, seconds: float) -> None:
    """Stream for ``seconds``, then stop between two batches."""
    stop = threading.Event()
    thread = threading.Thread(target=stream.run, args=(stop,), daemon=True)
    thread.start()
    time.sleep(seconds)
    stop.set()
    thread.join(timeout=70)
    if stream.error is not None:
        raise stream.error


@pytest.fixture
def database_url() -> Iterator[str]:
    with fresh_postgres() as url:
        yield url


def _lease(url: str, app: str) -> dict[str, Any] | None:
    engine = create_engine(url)
    try:
        with engine.connect() as sql:
            row = sql.execute(
                text(
                    "SELECT l.owner, l.token, l.acquired_at FROM leases l JOIN apps a "
                    "ON a.id = l.app_id WHERE a.name = :app"
                ),
                {"app": app},
            ).first()
    finally:
        engine.dispose()
    return None if row is None else dict(row._mapping)


def _query(url: str, sql_text: str, **parameters: Any) -> list[Any]:
    engine = create_engine(url)
    try:
        with engine.connect() as sql:
            return list(sql.execute(text(sql_text), parameters).all())
    finally:
        engine.dispose()


def _actions(url: str, app: str) -> list[Any]:
    return _query(
        url,
        "SELECT x.id, x.kind, x.ts, x.context, x.status FROM actions x JOIN apps a "
        "ON a.id = x.app_id WHERE a.name = :app ORDER BY x.id",
        app=app,
    )


def _window_of(context: Any) -> tuple[float, float]:
    data = orjson.loads(context) if isinstance(context, str | bytes) else context
    return (float(data["window_start"]), float(data["window_end"]))


@pytest.mark.slow
def test_killing_the_owner_mid_stream_loses_nothing_and_decides_nothing_twice(
    tmp_path: Path, database_url: str
) -> None:
    """Three replicas, a client streaming to them in turn; SIGKILL the owner of the app's
    loop mid-stream. Then: stored equals acknowledged, each sample once; the loop was taken
    over by another replica, which decided again, within 5 s of the kill; and no window
    was decided on twice (nor stored twice)."""
    replicas = start_replicas(database_url, tmp_path, 3)
    try:
        token = register(replicas[0], "pull")
        stream = Stream(replicas, "pull", token)
        stop = threading.Event()
        thread = threading.Thread(target=stream.run, args=(stop,), daemon=True)
        thread.start()
        time.sleep(3.0)  # the loop decides all along the stream
        before = _lease(database_url, "pull")
        assert before is not None
        owner = next(r for r in replicas if r.name == before["owner"])
        decided_before = _actions(database_url, "pull")
        assert [a for a in decided_before if a.kind != "none"], "nothing decided before the kill"
        last_before = max(a.id for a in decided_before)
        killed_at = time.time()
        owner.kill()

        deadline = time.monotonic() + 20
        after: dict[str, Any] | None = before
        while time.monotonic() < deadline:
            after = _lease(database_url, "pull")
            if after is not None and after["owner"] != owner.name:
                break
            time.sleep(0.05)
        assert after is not None and after["owner"] != owner.name, "nobody took the loop over"
        decided_after: list[Any] = []
        while time.monotonic() < deadline and not decided_after:
            decided_after = [
                a for a in _actions(database_url, "pull") if a.id > last_before and a.kind != "none"
            ]
            time.sleep(0.05)
        time.sleep(1.0)  # the new owner decides on
        stop.set()
        thread.join(timeout=70)
        if stream.error is not None:
            raise stream.error

        check_stored_and_decided(database_url, stream)
        # the loop resumed on another replica within 5 s
        takeover_s = after["acquired_at"] - killed_at
        assert after["token"] == before["token"] + 1
        assert takeover_s < TAKEOVER_LIMIT_S, takeover_s
        assert decided_after, "the new owner decided nothing"
        first_decision_s = decided_after[0].ts - killed_at
        assert first_decision_s < TAKEOVER_LIMIT_S, first_decision_s
        assert stream.failed_attempts >= 1  # the kill caught the client mid-stream
        actions = [a for a in _actions(database_url, "pull") if a.kind != "none"]
    finally:
        for replica in replicas:
            replica.stop()
    print(
        f"\ntakeover {takeover_s:.2f} s, first decision {first_decision_s:.2f} s after the kill; "
        f"{stream.batches} batches, {len(actions)} actions"
    )


def check_stored_and_decided(database_url: str, stream: Stream) -> None:
    """Every acknowledged sample stored once and nothing else; no window decided on twice
    nor stored twice; no batch left in an inbox."""
    stored = Counter(
        int(row.ts)
        for row in _query(
            database_url,
            "SELECT t.ts FROM telemetry t JOIN apps a ON a.id = t.app_id WHERE a.name = :app",
            app=stream.app,
        )
    )
    acknowledged = set(stream.acknowledged)
    assert len(acknowledged) == len(stream.acknowledged)
    twice = sorted(ts for ts, n in stored.items() if n > 1)
    lost = sorted(acknowledged - set(stored))
    extra = sorted(set(stored) - acknowledged)
    assert not twice and not lost and not extra, (twice[:10], lost[:10], extra[:10])
    actions = [a for a in _actions(database_url, stream.app) if a.kind != "none"]
    by_window = Counter(_window_of(a.context) for a in actions)
    assert not [w for w, n in by_window.items() if n > 1], by_window.most_common(3)
    windows = _query(
        database_url,
        'SELECT w.start, w."end", count(*) AS n FROM windows w JOIN apps a '
        'ON a.id = w.app_id WHERE a.name = :app GROUP BY w.start, w."end" '
        "HAVING count(*) > 1",
        app=stream.app,
    )
    assert not windows, windows[:5]
    assert _query(database_url, "SELECT count(*) FROM loop_inbox")[0][0] == 0


def test_a_replica_that_lost_its_lease_cannot_write(database_url: str) -> None:
    """Fencing: once another replica has taken the loop over (the lease expired), the first
    one's decisions are refused whole, its renewal fails, and the inbox stays for the new
    owner."""
    first, second = Store(database_url), Store(database_url)
    try:
        app, _ = first.create_app(Application.single("fenced", ["linear", "svm"]))
        first.add_policy(app, "default", {"policy": "p"})
        [mine] = first.take_leases("r1", first.free_loops("r1"), 0.3)
        assert second.take_leases("r2", second.free_loops("r2"), 3) == []  # held: not free
        first.enqueue(app, "default", [{"ts": 1.0}])
        [batch] = first.inbox(app, "default")
        time.sleep(0.4)  # r1 stops renewing: its lease expires
        [theirs] = second.take_leases("r2", second.free_loops("r2"), 3)
        assert theirs.token == mine.token + 1
        window: dict[str, Any] = {
            "service": "default",
            "start": 0.0,
            "end": 1.0,
            "model": "linear",
            "version": None,
            "count": 1,
            "signals": {},
        }
        action: dict[str, Any] = {
            "service": "default",
            "instance": None,
            "kind": "switch_model",
            "model": "svm",
            "version": None,
            "ts": 1.0,
            "strategy": "s",
            "reason": "r",
            "trigger": "t",
            "values": {},
            "context": {},
        }
        with pytest.raises(LeaseLost):
            first.record_decisions(
                app,
                "default",
                "r1",
                mine.token,
                windows=[window],
                actions=[action],
                consumed=[batch.id],
            )
        assert first.renew_leases("r1", [(app.id, "default", mine.token)], 3) == set()
        assert first.actions(app) == [] and first.windows(app) == []
        assert [b.id for b in second.inbox(app, "default")] == [batch.id]
        # the new owner's write goes through, and takes the batch out of the inbox
        stored, _ = second.record_decisions(
            app, "default", "r2", theirs.token, actions=[action], consumed=[batch.id]
        )
        assert [a.kind for a in stored] == ["switch_model"]
        assert second.inbox(app, "default") == []
        # a replica restarted under the same id takes its loop back at once, token moving on
        [again] = second.take_leases("r2", [(app.id, "fenced", "default")], 3)
        assert again.token == theirs.token + 1
    finally:
        first.close()
        second.close()


def test_a_replica_whose_contract_checks_were_taken_over_cannot_record_a_violation(
    database_url: str,
) -> None:
    """Fencing of contract checks: a violation (and the action its SLO asks for) recorded
    under a contract lease that another replica took over meanwhile is refused whole; the
    new holder's record goes through, once."""
    first, second = Store(database_url), Store(database_url)
    try:
        app, _ = first.create_app(Application.single("checked", ["linear", "svm"]))
        key = [(app.id, app.name, CONTRACT_LEASE)]
        [mine] = first.take_leases("r1", key, 0.3)
        time.sleep(0.4)  # r1 stops renewing: its lease expires
        [theirs] = second.take_leases("r2", key, 3)
        violation: dict[str, Any] = {
            "ts": 1.0,
            "contract_version": 1,
            "slo": "latency",
            "scope": "service",
            "target": "default",
            "condition": "p95(latency_ms) <= 50",
            "severity": "critical",
            "window": "20 samples",
            "samples": 20,
            "checks": [],
            "explanation": "p95 300 ms",
            "attribution": [],
            "action_id": None,
        }
        alert: dict[str, Any] = {
            "service": "default",
            "instance": None,
            "kind": "alert",
            "model": None,
            "version": None,
            "ts": 1.0,
            "strategy": "contract",
            "reason": "latency violated",
            "trigger": "latency",
            "values": {},
            "context": {},
        }
        with pytest.raises(LeaseLost, match="r2"):
            first.record_violations(app, [violation], [alert], ("r1", mine.token))
        assert first.violations(app) == [] and first.actions(app) == []
        ids, stored = second.record_violations(app, [violation], [alert], ("r2", theirs.token))
        [recorded] = second.violations(app)
        assert recorded["id"] == ids[0] and recorded["action_id"] == stored[0].id
        assert [a.kind for a in second.actions(app)] == ["alert"]
    finally:
        first.close()
        second.close()


def test_non_owners_hand_telemetry_to_the_owner_and_relay_events(
    tmp_path: Path, database_url: str
) -> None:
    """Two replicas: telemetry sent only to the one that does not own the loop is decided
    on by the owner all the same, and the pending actions come back in the non-owner's
    replies; a subscriber of the non-owner's event stream sees the owner's events; a policy
    applied on the non-owner is put in force by the owner's loop."""
    replicas = start_replicas(database_url, tmp_path, 2)
    try:
        token = register(replicas[0], "relay")  # the policy is applied there: r0 owns
        lease = _lease(database_url, "relay")
        assert lease is not None and lease["owner"] == "r0"
        other = replicas[1]
        seen: list[str] = []
        subscribed = threading.Event()

        def subscribe() -> None:
            with (
                httpx.Client(timeout=30) as client,
                client.stream(
                    "GET",
                    f"{other.url}/api/v1/apps/relay/stream",
                    headers={"Authorization": f"Bearer {token}"},
                ) as events,
            ):
                subscribed.set()
                for line in events.iter_lines():
                    if line.startswith("event: "):
                        seen.append(line.removeprefix("event: "))
                    if "window" in seen and "action" in seen:
                        return

        listener = threading.Thread(target=subscribe, daemon=True)
        listener.start()
        assert subscribed.wait(10)
        time.sleep(1.5)  # the owner hears of the subscriber in the replicas' heartbeats
        stream = Stream(replicas, "relay", token)
        deadline = time.monotonic() + 20
        with httpx.Client(timeout=10) as client:
            while time.monotonic() < deadline and not stream.actions_received:
                stream.send_batch(client, only=other)
                time.sleep(0.1)
        assert stream.actions_received, "no decision reached the non-owner's replies"
        listener.join(timeout=10)
        assert "window" in seen and "action" in seen, seen
        decided = [a for a in _actions(database_url, "relay") if a.kind != "none"]
        assert decided and {a.id for a in decided} >= set(stream.actions_received)

        # a policy applied on the non-owner is put in force by the owner's loop
        owner_status = f"{replicas[0].url}/api/v1/apps/relay/status"
        assert httpx.get(owner_status, timeout=10).json()["strategy"] == "switch"
        httpx.put(
            f"{other.url}/api/v1/apps/relay/policy",
            content=POLICY.format(name="relay").replace("strategy: switch", "strategy: harmone"),
            headers={"Authorization": f"Bearer {ADMIN}"},
            timeout=30,
        ).raise_for_status()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if httpx.get(owner_status, timeout=10).json()["strategy"] == "harmone":
                break
            time.sleep(0.1)
        assert httpx.get(owner_status, timeout=10).json()["strategy"] == "harmone"
        assert (_lease(database_url, "relay") or {}).get("owner") == "r0"
    finally:
        for replica in replicas:
            replica.stop()


def test_a_paused_owner_resumes_without_writing(tmp_path: Path, database_url: str) -> None:
    """SIGSTOP the owner until its lease expires and another replica takes the loop over,
    then SIGCONT it and send it batches at once: it drops the loop (its keeper's renewal
    fails, or its next decision is refused by the fence: the in-process test below makes
    sure of the latter) and hands the samples on; nothing is stored twice or lost, and no
    window is decided on twice."""
    replicas = start_replicas(database_url, tmp_path, 2)
    try:
        token = register(replicas[0], "paused")  # r0 owns
        stream = Stream(replicas, "paused", token, timeout=2.0)
        owner, other = replicas
        stream_for(stream, 2.0)
        # paused between requests (one paused while storing a batch would hold that batch's
        # idempotency key, and its retry elsewhere would wait for it to resume)
        owner.process.send_signal(signal.SIGSTOP)
        stop = threading.Event()
        thread = threading.Thread(target=stream.run, args=(stop,), daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            lease = _lease(database_url, "paused")
            if lease is not None and lease["owner"] == other.name:
                break
            time.sleep(0.1)
        assert lease is not None and lease["owner"] == other.name, lease
        time.sleep(1.0)  # the new owner decides on
        stop.set()
        thread.join(timeout=70)
        if stream.error is not None:
            raise stream.error
        owner.process.send_signal(signal.SIGCONT)
        with httpx.Client(timeout=10) as client:
            for _ in range(5):  # straight to the stale owner, before it looks at its lease
                stream.send_batch(client, only=owner)
        time.sleep(2 * LOOK_S)  # anything it handed on is consumed
        assert (_lease(database_url, "paused") or {}).get("owner") == other.name
        check_stored_and_decided(database_url, stream)
    finally:
        for replica in replicas:
            if replica.process.poll() is None:
                replica.process.send_signal(signal.SIGCONT)
            replica.stop()
    assert "lost the loop of paused/default" in owner.log.read_text()


def test_a_decision_refused_by_the_fence_is_handed_to_the_new_owner(database_url: str) -> None:
    """In one process, two servers as replicas (their threads not started, each step run by
    hand): the first owns the loop, its lease expires and the second takes it over; the
    first, not yet aware, decides on a batch: the batch is stored and acknowledged, the
    decision refused, the loop dropped and the samples handed to the new owner, which
    decides on them from its inbox."""
    store = Store(database_url)
    try:
        first = Server(store, ADMIN, replica=ReplicaOptions("a", lease_seconds=0.3))
        second = Server(store, ADMIN, replica=ReplicaOptions("b", lease_seconds=3))
        assert first.replicas is not None and second.replicas is not None
        app, _ = store.create_app(Application.single("handed", ["linear", "svm", "lstm"]))
        first.apply_policy(app, POLICY.format(name="handed"))  # "a" takes the loop
        assert first.replicas.token("handed", "default") == 1
        time.sleep(0.4)  # "a" does not renew (its keeper is not running): the lease expires
        second.replicas._take_free()
        assert second.replicas.token("handed", "default") == 2

        samples: list[dict[str, Any]] = [
            {"model": "lstm", "model_version": 1, "ts": float(ts), "metrics": {"error": 1.0}}
            for ts in range(BATCH)
        ]
        reply = first.ingest(app, orjson.dumps({"samples": samples}))
        assert reply == {"accepted": BATCH, "actions": []}
        assert first.replicas.token("handed", "default") is None  # dropped
        assert store.actions(app) == [] and store.windows(app) == []
        assert store.inbox_size(app) == 1

        second.replicas._drain("handed", "default", second.replicas.held()["handed", "default"])
        assert store.inbox_size(app) == 0
        decided = [a for a in store.actions(app) if a.kind != "none"]
        assert [a.kind for a in decided] == ["switch_model"]
        assert len(store.windows(app)) == 2
        # a pull reply of any replica carries it
        more = [{**s, "ts": s["ts"] + BATCH} for s in samples]
        reply = first.ingest(app, orjson.dumps({"samples": more}))
        assert [a["id"] for a in reply["actions"]] == [decided[0].id]
    finally:
        store.close()
