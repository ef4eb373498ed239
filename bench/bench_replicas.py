"""Replicas of the server on one PostgreSQL database: telemetry ingestion with 1, 2 and 3
replicas (samples per second, over real HTTP), and failover time when the replica that owns
an app's live loop is killed (median of 5).

Ingestion: for each count of replicas, a fresh database (``harmonia_bench_…`` on the
PostgreSQL server of ``--database``, dropped after the run), that many ``harmonia serve``
processes on loopback ports, an app with a HarmonE policy (its loop owned by one replica:
the others store their batches and hand them to it through its inbox), and ``--clients``
client processes posting batches of ``--batch`` samples to the replicas in turn, as a load
balancer would. The figure is the samples acknowledged per second; the samples stored are
counted and must equal them. The baseline beside it: one server on PostgreSQL without
leases (``HARMONIA_LEASE_SECONDS=0``: its loop decides in the request, as on SQLite).

Failover: three replicas, a client streaming small batches to them in turn with a policy
that decides all along the stream; ``--failovers`` times, the owner of the app's loop is
killed with SIGKILL (then started again, so that three replicas run for the next round).
Takeover: from the kill to the new owner's lease (``acquired_at``, the database's clock on
this machine); first decision: from the kill to the first action decided after it.

Prints the figures and writes ``build/bench/replicas.json``.

    .venv/bin/python bench/bench_replicas.py [--replicas 1,2,3] [--samples 120000] \\
        [--batch 1000] [--clients 3] [--failovers 5] \\
        [--database postgresql+psycopg://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ADMIN = "bench-admin"
MODELS = ["linear", "svm", "lstm"]
INGEST_POLICY = """
policy: bench
system: bench
models: [linear, svm, lstm]
initial_model: lstm
window: 200 samples
strategy: harmone
"""
#: every window violates: a switch is decided each time the last one shows applied
FAILOVER_POLICY = """
policy: failover
system: failover
models: [linear, svm, lstm]
initial_model: lstm
window: 10 samples
strategy: switch
boundaries:
  - when: mean(error) > 0.5
    then: switch_model
"""
LEASE_S = 3.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    """A new empty database on the PostgreSQL server of ``admin_url``, dropped after."""
    name = f"harmonia_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def query(url: str, sql: str, **parameters: Any) -> list[Any]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(text(sql), parameters).all())
    finally:
        engine.dispose()


def durability(url: str) -> dict[str, str]:
    settings = ("fsync", "synchronous_commit", "wal_sync_method", "server_version")
    return {s: str(query(url, f"SHOW {s}")[0][0]) for s in settings}


class Replica:
    """``harmonia serve`` as replica ``name`` of the database at ``url``; started again on
    the same port and id after a kill."""

    def __init__(self, name: str, url: str, lease_s: float = LEASE_S) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = Path(tempfile.mkdtemp(prefix=f"harmonia-bench-{name}-"))
        self.env = {
            **os.environ,
            "HARMONIA_DATA_DIR": str(self.data_dir),
            "HARMONIA_DATABASE_URL": url,
            "HARMONIA_ADMIN_TOKEN": ADMIN,
            "HARMONIA_REPLICA_ID": name,
            "HARMONIA_LEASE_SECONDS": str(lease_s),
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with (self.data_dir / "server.log").open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "harmonia.cli", "serve", "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.url}/healthz", timeout=1).raise_for_status()
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"replica {self.name} did not start")

    def kill(self) -> None:
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


@contextmanager
def replicas_on(url: str, count: int, lease_s: float = LEASE_S) -> Iterator[list[Replica]]:
    replicas = [Replica(f"r{i}", url, lease_s) for i in range(count)]
    try:
        for replica in replicas:
            replica.start()
        for replica in replicas:
            replica.wait_ready()
        yield replicas
    finally:
        for replica in replicas:
            replica.stop()


def register(replica: Replica, name: str, policy: str) -> str:
    admin = {"Authorization": f"Bearer {ADMIN}"}
    reply = httpx.post(
        f"{replica.url}/api/v1/apps",
        json={"name": name, "owner": "bench", "models": MODELS},
        headers=admin,
        timeout=60,
    )
    reply.raise_for_status()
    httpx.put(
        f"{replica.url}/api/v1/apps/{name}/policy", content=policy, headers=admin, timeout=60
    ).raise_for_status()
    return str(reply.json()["token"])


def batches_of(count: int, size: int, seed: int, start: float) -> list[bytes]:
    """``count`` bodies of ``size`` samples, one a second from ``start`` (in the past)."""
    rng = random.Random(seed)
    out = []
    for b in range(count):
        samples = []
        for i in range(size):
            target = rng.gauss(100, 20)
            samples.append(
                {
                    "model": "lstm",
                    "model_version": 1,
                    "ts": start + float((seed * count + b) * size + i),
                    "latency_ms": 0.1,
                    "energy_j": 0.001,
                    "energy_source": "estimate",
                    "prediction": target + rng.gauss(0, 5),
                    "target": target,
                    "drift_value": target,
                    "metrics": {},
                }
            )
        out.append(orjson.dumps({"instance": f"i-{seed}", "samples": samples}))
    return out


def post_batches(
    urls: list[str], token: str, count: int, size: int, seed: int, start: float, ready: Any
) -> None:
    """One client: build its batches, wait for the others, post them to the replicas in
    turn (starting with a different one per client)."""
    bodies = batches_of(count, size, seed, start)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    ready.wait()
    with httpx.Client(timeout=120) as client:
        for i, body in enumerate(bodies):
            url = urls[(seed + i) % len(urls)]
            client.post(
                f"{url}/api/v1/apps/bench/telemetry", content=body, headers=headers
            ).raise_for_status()


def ingestion(
    admin_url: str, count: int, args: argparse.Namespace, lease_s: float = LEASE_S
) -> dict[str, Any]:
    """Samples per second through ``count`` replicas (``lease_s`` 0: one server without
    leases, the baseline); stored against sent, and when the owner's loop caught up."""
    with fresh_database(admin_url) as url, replicas_on(url, count, lease_s) as replicas:
        token = register(replicas[0], "bench", INGEST_POLICY)
        per_client = args.samples // args.batch // args.clients
        start = float(int(time.time()) - 3600 - args.samples)
        ready = multiprocessing.Barrier(args.clients + 1)
        urls = [r.url for r in replicas]
        clients = [
            multiprocessing.Process(
                target=post_batches,
                args=(urls, token, per_client, args.batch, seed, start, ready),
            )
            for seed in range(args.clients)
        ]
        for process in clients:
            process.start()
        load_before = os.getloadavg()
        ready.wait()
        started = time.perf_counter()
        for process in clients:
            process.join()
        seconds = time.perf_counter() - started
        failed = [p.exitcode for p in clients if p.exitcode != 0]
        sent = per_client * args.batch * args.clients
        stored = query(url, "SELECT count(*) FROM telemetry")[0][0]
        # the owner's inbox drains once the stream stops
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and query(url, "SELECT count(*) FROM loop_inbox")[0][0]:
            time.sleep(0.2)
        drained = time.perf_counter() - started
        windows = query(url, "SELECT count(*) FROM windows")[0][0]
        return {
            "replicas": count,
            "leases": lease_s > 0,
            "durability": durability(url),
            "samples_sent": sent,
            "samples_stored": int(stored),
            "nothing_lost": int(stored) == sent and not failed,
            "seconds": seconds,
            "samples_per_s": sent / seconds,
            "loop_caught_up_s": drained,
            "windows": int(windows),
            "load_before": load_before,
            "load_after": os.getloadavg(),
        }


class Stream:
    """A pull client streaming batches of 20 samples to the replicas in turn, each under
    an idempotency key, retried on the next replica until acknowledged."""

    def __init__(self, replicas: list[Replica], token: str) -> None:
        self.replicas = replicas
        self.token = token
        self.model = "lstm"
        self.sent = 0
        self.turn = 0
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with httpx.Client(timeout=5) as client:
                while not self.stop.is_set():
                    self._send(client)
                    time.sleep(0.01)
        except BaseException as error:
            self.error = error

    def _send(self, client: httpx.Client) -> None:
        samples = [
            {"model": self.model, "model_version": 1, "ts": float(ts), "metrics": {"error": 1.0}}
            for ts in range(self.sent, self.sent + 20)
        ]
        body = orjson.dumps({"samples": samples})
        headers = {
            "Authorization": f"Bearer {self.token}",
            "Content-Type": "application/json",
            "Idempotency-Key": f"failover-{self.sent}",
        }
        while not self.stop.is_set():
            replica = self.replicas[self.turn % len(self.replicas)]
            self.turn += 1
            try:
                reply = client.post(
                    f"{replica.url}/api/v1/apps/failover/telemetry", content=body, headers=headers
                )
            except httpx.TransportError:
                continue
            if reply.status_code >= 500:
                continue
            reply.raise_for_status()
            self.sent += 20
            for action in reply.json()["actions"]:
                if action["kind"] == "switch_model" and action.get("model"):
                    self.model = action["model"]
            return


def failover(admin_url: str, rounds: int) -> dict[str, Any]:
    """Kill the owner of the app's loop ``rounds`` times; takeover and first decision."""
    lease_sql = (
        "SELECT l.owner, l.token, l.acquired_at FROM leases l JOIN apps a ON a.id = l.app_id "
        "WHERE a.name = 'failover'"
    )
    runs: list[dict[str, Any]] = []
    takeovers: list[float] = []
    decisions: list[float] = []
    with fresh_database(admin_url) as url, replicas_on(url, 3) as replicas:
        stream = Stream(replicas, register(replicas[0], "failover", FAILOVER_POLICY))
        thread = threading.Thread(target=stream.run, daemon=True)
        thread.start()
        try:
            for _ in range(rounds):
                time.sleep(2.0)
                [before] = query(url, lease_sql)
                owner = next(r for r in replicas if r.name == before.owner)
                last = query(url, "SELECT coalesce(max(id), 0) FROM actions")[0][0]
                killed_at = time.time()
                owner.kill()
                takeover = decision = None
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline and (takeover is None or decision is None):
                    [lease] = query(url, lease_sql)
                    if takeover is None and lease.token > before.token:
                        takeover = lease.acquired_at - killed_at
                    first = query(
                        url,
                        "SELECT min(ts) FROM actions WHERE id > :last AND kind <> 'none'",
                        last=last,
                    )[0][0]
                    if decision is None and first is not None:
                        decision = first - killed_at
                    time.sleep(0.05)
                runs.append(
                    {"killed": owner.name, "takeover_s": takeover, "first_decision_s": decision}
                )
                takeovers += [] if takeover is None else [float(takeover)]
                decisions += [] if decision is None else [float(decision)]
                print(
                    f"failover: killed {owner.name}; takeover {_seconds(takeover)}, first "
                    f"decision {_seconds(decision)} after the kill",
                    flush=True,
                )
                owner.start()  # three replicas again for the next round
                owner.wait_ready()
        finally:
            stream.stop.set()
            thread.join(timeout=30)
    if stream.error is not None:
        raise stream.error
    return {
        "lease_s": LEASE_S,
        "rounds": runs,
        "median_takeover_s": statistics.median(takeovers) if takeovers else None,
        "median_first_decision_s": statistics.median(decisions) if decisions else None,
        "samples_streamed": stream.sent,
    }


def _seconds(value: float | None) -> str:
    return "none within 30 s" if value is None else f"{value:.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database",
        default=os.environ.get(
            "HARMONIA_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
        help="the PostgreSQL server (its URL; a database is created for each run)",
    )
    parser.add_argument("--replicas", default="1,2,3", help="replica counts to measure")
    parser.add_argument("--samples", type=int, default=120_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=3)
    parser.add_argument("--failovers", type=int, default=5, help="kills (0: none)")
    parser.add_argument(
        "--no-baseline",
        dest="baseline",
        action="store_false",
        help="leave out the baseline: one server on PostgreSQL without leases",
    )
    parser.add_argument("--out", type=Path, default=Path("build/bench/replicas.json"))
    args = parser.parse_args()

    counts = [int(n) for n in args.replicas.split(",") if n.strip()]
    ingest = []
    plan = [(1, 0.0)] if args.baseline else []
    for count, lease_s in [*plan, *((n, LEASE_S) for n in counts)]:
        run = ingestion(args.database, count, args, lease_s)
        ingest.append(run)
        label = f"{count} replica{'s' if count > 1 else ''}" + ("" if lease_s else ", no leases")
        print(
            f"{label:<22} {run['samples_per_s']:>10,.0f} "
            f"samples/s (stored {run['samples_stored']:,} of {run['samples_sent']:,}; loop "
            f"caught up {run['loop_caught_up_s']:.1f} s; load {run['load_before'][0]:.2f})",
            flush=True,
        )
    failovers = failover(args.database, args.failovers) if args.failovers else None
    result = {
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "samples": args.samples,
        "batch": args.batch,
        "clients": args.clients,
        "ingestion": ingest,
        "failover": failovers,
    }
    print(json.dumps(result, indent=2))
    for run in ingest:
        count = run["replicas"]
        label = f"{count} replica{'s' if count > 1 else ''}" + (
            "" if run["leases"] else ", no leases"
        )
        print(
            f"{label:<22} {run['samples_per_s']:>10,.0f} samples/s, "
            f"nothing lost: {run['nothing_lost']}"
        )
    if failovers is not None:
        print(
            f"failover (median of {len(failovers['rounds'])}): takeover "
            f"{_seconds(failovers['median_takeover_s'])}, first decision "
            f"{_seconds(failovers['median_first_decision_s'])} after the kill"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
