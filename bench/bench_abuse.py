"""Abusive requests against a live server: does one bad client stall everyone else?

Starts ``harmonia serve`` as its own process on loopback (SQLite in a temporary data
directory, or a fresh database on the PostgreSQL server named by ``--database-url``, dropped
afterwards), registers an app, sets its policy, and keeps two well-behaved clients running,
each in its own process (in this one they would share the bench's GIL and time the bench):

- a steady client that ingests batches of 50 samples at 20 batches/s on a fixed schedule; a
  request's latency counts from the moment it was due, so a stalled server shows in the
  requests that had to wait, not only in the one that was stuck;
- a ``/healthz`` poller, a probe every ~10 ms on one kept-alive connection.

After a baseline phase with no abuse, each abusive request gets a phase of its own (at least
``--phase-seconds``, longer while the server stays stuck, plus a short settle): bodies nested
100k levels deep (JSON) or 50k (YAML), 8 MiB bodies (to a route with a smaller limit, and the
largest telemetry batch taken), 100 MB chunked with no Content-Length, a 2 MB YAML list of a
million integers to the token-less validation route, 300 event-stream subscribers, and a
Harmonica tactic endpoint that never answers. Per phase it reports the longest ``/healthz``
probe, the longest gap between two answered probes, the steady client's p99 against the
baseline's, what the abusive request got, the server's CPU time and its RSS before, after
and at peak. Targets, printed beside the figures: no stall over 100 ms, steady p99 within 2x
the baseline's. ``--repeat 3`` runs it all three times, on a fresh server each time, and
reports medians. Prints a table and writes ``build/bench/abuse.json``.

    .venv/bin/python bench/bench_abuse.py [--repeat 3] [--database-url postgresql+psycopg://...]

On a 2-core machine the bench's own clients share the CPUs with the server: read a phase
against the baseline of the same run, and take medians.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import itertools
import json
import multiprocessing
import os
import platform
import secrets
import select
import selectors
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import httpx
import orjson
from bench_ingest import batches, free_port, rss_kb
from bench_latency import percentile
from rich.console import Console
from rich.table import Table

ADMIN = "bench-admin"
APP = "steady"
BULK = "bulk"
POLICY = """
policy: steady
system: steady
models: [linear, svm, lstm]
initial_model: lstm
window: 200 samples
strategy: harmone
"""
#: the targets the figures are held against
STALL_TARGET_MS = 100.0
P99_TARGET_RATIO = 2.0
MIB = 1024 * 1024
#: no abusive request is waited on longer than this (the server may hang on one)
ABUSE_TIMEOUT_S = 120.0
#: the steady client and the poller wait this long for a reply: a stall is measured, not cut
CLIENT_TIMEOUT_S = 300.0


# -- the server --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    """The server under test, and the tokens the abusive requests may use."""

    port: int
    token: str  # the steady app's
    bulk_token: str  # the bulk app's: a client of its own, with a live loop of its own

    def auth(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or ADMIN}"}


@contextlib.contextmanager
def temporary_database(url: str) -> Iterator[str]:
    """A fresh database on the PostgreSQL server of ``url``, dropped afterwards: each run starts
    empty, and nothing is left behind in the database the user named."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    base = make_url(url)
    name = f"harmonia_abuse_{secrets.token_hex(4)}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@dataclass(frozen=True)
class Running:
    """A started server process, the port it listens on and its log."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path


@contextlib.contextmanager
def serve(database_url: str) -> Iterator[Running]:
    """``harmonia serve`` on a free port; its output goes to a file (a pipe nobody reads
    would fill up with tracebacks and block the server)."""
    data_dir = Path(tempfile.mkdtemp(prefix="harmonia-abuse-"))
    port = free_port()
    env = {
        **os.environ,
        "HARMONIA_DATA_DIR": str(data_dir),
        "HARMONIA_DATABASE_URL": database_url,
        "HARMONIA_ADMIN_TOKEN": ADMIN,
    }
    log = data_dir / "server.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "harmonia.cli", "serve", "--port", str(port)],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while call(port, "GET", "/healthz", timeout=1)["status"] != 200:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start: see {log}")
            time.sleep(0.1)
        yield Running(process, port, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    shutil.rmtree(data_dir, ignore_errors=True)  # kept, with its log, when something failed


def exchange(
    port: int,
    head: str,
    pieces: Iterable[bytes | memoryview],
    timeout: float = ABUSE_TIMEOUT_S,
) -> dict[str, Any]:
    """Send a request's ``head`` and then its body ``pieces`` on a fresh connection, and read
    the reply: its status (or the error that stood in for one), how long it took, how much of
    the body went out, and the start of the reply's body.

    The reply is looked for before each piece: a server that refuses a body early (413)
    answers and stops reading, and a client that kept writing would get a reset, and lose
    the answer, instead of the status.
    """
    started = time.monotonic()
    sent = 0
    status: int | str = "no reply"
    detail = ""
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    except OSError as error:
        return {"status": f"error: {type(error).__name__}", "seconds": 0.0, "detail": ""}
    with sock:
        try:
            sock.sendall(head.encode())
            for piece in pieces:
                if select.select([sock], [], [], 0)[0]:
                    break  # answered already
                sock.sendall(piece)
                sent += len(piece)
        except OSError as error:
            status = f"error while sending: {type(error).__name__}"
        reply = http.client.HTTPResponse(sock)
        try:
            reply.begin()
            status = reply.status
            detail = reply.read(160).decode("utf-8", errors="replace")
        except (OSError, http.client.HTTPException) as error:
            if status == "no reply":
                status = f"error: {type(error).__name__}"
            detail = str(error)[:160]
    return {
        "status": status,
        "seconds": time.monotonic() - started,
        "mib_sent": round(sent / MIB, 2),
        "detail": detail,
    }


def call(
    port: int,
    method: str,
    path: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    timeout: float = ABUSE_TIMEOUT_S,
) -> dict[str, Any]:
    """One request with a Content-Length, on a fresh connection (see `exchange`)."""
    lines = {
        "Host": f"127.0.0.1:{port}",
        "Content-Length": str(len(body)),
        "Connection": "close",
        **(headers or {}),
    }
    head = f"{method} {path} HTTP/1.1\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in lines.items()) + "\r\n"
    chunk = 64 * 1024
    view = memoryview(body)
    return exchange(port, head, (view[i : i + chunk] for i in range(0, len(body), chunk)), timeout)


# -- the well-behaved clients (each in its own process) ----------------------------------------
def steady_client(port: int, token: str, rate: float, size: int, stop: Any, out: Any) -> None:
    """Post ``size``-sample batches at ``rate`` per second on a fixed schedule until ``stop``;
    put ``(due, sent, answered, status)`` per request on ``out``.

    Latency counts from when a request was due, not when it went out. Slots that fall due
    while a request is stuck are not sent in a burst afterwards (that would be a load the
    server never asked for); each is recorded with ``sent = -1`` and the time the stuck
    request came back, the least a client at this rate would have waited (wrk2's correction
    for coordinated omission). So one stall shows in every request it held up.
    """
    bodies = batches(40, size, seed=11)
    path = f"/api/v1/apps/{APP}/telemetry"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=CLIENT_TIMEOUT_S)
    records: list[tuple[float, float, float, int]] = []
    interval = 1 / rate
    due = time.monotonic()
    count = 0
    while not stop.is_set():
        time.sleep(max(0.0, due - time.monotonic()))
        sent = time.monotonic()
        try:
            connection.request("POST", path, bodies[count % len(bodies)], headers)
            reply = connection.getresponse()
            reply.read()
            status = reply.status
        except (OSError, http.client.HTTPException):
            status = 0
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=CLIENT_TIMEOUT_S)
        answered = time.monotonic()
        records.append((due, sent, answered, status))
        count += 1
        due += interval
        while due < answered - interval:  # held up: at most one slot goes out late
            records.append((due, -1.0, answered, status))
            due += interval
    out.put(records)


def health_poller(port: int, interval: float, stop: Any, out: Any) -> None:
    """Probe ``/healthz`` every ``interval`` seconds on one kept-alive connection until
    ``stop``; put ``(started, answered, ok)`` per probe on ``out``."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=CLIENT_TIMEOUT_S)
    records: list[tuple[float, float, bool]] = []
    while not stop.is_set():
        started = time.monotonic()
        try:
            connection.request("GET", "/healthz")
            reply = connection.getresponse()
            reply.read()
            ok = reply.status == 200
        except (OSError, http.client.HTTPException):
            ok = False
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=CLIENT_TIMEOUT_S)
        answered = time.monotonic()
        records.append((started, answered, ok))
        time.sleep(max(0.0, started + interval - time.monotonic()))
    out.put(records)


# -- the abusive requests ----------------------------------------------------------------------
def deep_json(levels: int) -> bytes:
    """``[[[...]]]``: tiny on the wire, but a recursive parser needs a frame per level."""
    return b"[" * levels + b"]" * levels


def json_deep_telemetry(target: Target) -> dict[str, Any]:
    headers = {"Content-Type": "application/json"}  # token-less: Harmonica's, from loopback
    return call(target.port, "POST", "/api/telemetry", deep_json(100_000), headers)


def json_deep_policy(target: Target) -> dict[str, Any]:
    headers = {"Content-Type": "application/json"}
    return call(target.port, "POST", "/api/policy", deep_json(100_000), headers)


def yaml_deep_policy(target: Target) -> dict[str, Any]:
    # a YAML flow sequence nested 50k levels deep (block style would grow quadratically)
    headers = {**target.auth(), "Content-Type": "application/yaml"}
    return call(target.port, "PUT", f"/api/v1/apps/{APP}/policy", deep_json(50_000), headers)


def body_8mib(target: Target) -> dict[str, Any]:
    """A Harmonica telemetry message of exactly 8 MiB (the largest body allowed): parsed as
    JSON and kept as one message in the knowledge."""
    values = orjson.dumps({"timestamp": 1.0, "values": [0.123456789] * (8 * MIB // 12 - 10)})
    body = values[:-2] + b" " * (8 * MIB - len(values)) + values[-2:]
    assert len(body) == 8 * MIB
    return call(target.port, "POST", "/api/telemetry", body, {"Content-Type": "application/json"})


def body_8mib_batch(target: Target) -> dict[str, Any]:
    """The largest telemetry batch the server takes, from another app's client: 10,000
    samples with 30 metrics each, padded with JSON whitespace to exactly 8 MiB."""
    metrics = {f"metric_{j:02d}": 0.123456789 for j in range(30)}
    samples = [
        {"model": "lstm", "model_version": 1, "ts": float(i), "latency_ms": 0.1, "metrics": metrics}
        for i in range(10_000)
    ]
    batch = orjson.dumps({"instance": "bulk", "samples": samples})
    assert len(batch) <= 8 * MIB, len(batch)
    body = batch[:-1] + b" " * (8 * MIB - len(batch)) + batch[-1:]
    headers = {**target.auth(target.bulk_token), "Content-Type": "application/json"}
    return call(target.port, "POST", f"/api/v1/apps/{BULK}/telemetry", body, headers)


def chunked_100mb(target: Target) -> dict[str, Any]:
    """100 MB of telemetry body in 64 KiB chunks, with no Content-Length for the size limit
    to read: the server should answer 413 once it has counted 8 MiB of the stream, rather
    than hold it all in memory."""
    total, chunk = 100_000_000, 64 * 1024
    frame = f"{chunk:x}\r\n".encode() + b"x" * chunk + b"\r\n"
    head = (
        f"POST /api/v1/apps/{APP}/telemetry HTTP/1.1\r\nHost: 127.0.0.1:{target.port}\r\n"
        f"Authorization: Bearer {target.token}\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    pieces = itertools.chain(itertools.repeat(frame, total // chunk), [b"0\r\n\r\n"])
    return exchange(target.port, head, pieces)


def validate_1m_ints(target: Target) -> dict[str, Any]:
    """A 2 MB YAML list of a million integers to the token-less policy validation route."""
    body = b"[" + b"0," * 999_999 + b"0]"
    return call(
        target.port, "POST", "/api/v1/policy/validate", body, {"Content-Type": "application/yaml"}
    )


def sse_subscribers(target: Target, count: int = 300, hold: float = 3.0) -> dict[str, Any]:
    """``count`` event-stream subscribers to the steady app (with the admin token), each
    read as a dashboard would, held ``hold`` seconds: the server should refuse those beyond
    its cap rather than fan every telemetry event out to all of them."""
    started = time.monotonic()
    request = (
        f"GET /api/v1/apps/{APP}/stream HTTP/1.1\r\nHost: 127.0.0.1:{target.port}\r\n"
        f"Authorization: Bearer {ADMIN}\r\nAccept: text/event-stream\r\n\r\n"
    ).encode()
    selector = selectors.DefaultSelector()
    statuses: Counter[str] = Counter()
    heads: dict[socket.socket, bytes] = {}
    for _ in range(count):
        try:
            sock = socket.create_connection(("127.0.0.1", target.port), timeout=10)
            sock.sendall(request)
        except OSError as error:
            statuses[f"error: {type(error).__name__}"] += 1
            continue
        sock.setblocking(False)
        heads[sock] = b""
        selector.register(sock, selectors.EVENT_READ)
    streamed = 0
    until = time.monotonic() + hold
    while selector.get_map() and time.monotonic() < until:
        for key, _ in selector.select(timeout=0.1):
            stream = key.fileobj
            assert isinstance(stream, socket.socket)
            try:
                data = stream.recv(65536)
            except OSError:
                data = b""
            if stream in heads:  # still waiting for its status line
                heads[stream] += data
                if b"\r\n" in heads[stream]:
                    statuses[heads.pop(stream).split(b" ", 2)[1].decode()] += 1
                elif not data:
                    statuses["closed without a reply"] += 1
                    heads.pop(stream)
            else:
                streamed += len(data)
            if not data:
                selector.unregister(stream)
                stream.close()
    statuses["no reply"] += len(heads)
    for key in list(selector.get_map().values()):
        key.fileobj.close()  # type: ignore[union-attr]
    selector.close()
    return {
        "status": f"{statuses.get('200', 0)}/{count} accepted",
        "accepted": statuses.get("200", 0),
        "statuses": dict(+statuses),
        "bytes_streamed": streamed,
        "seconds": time.monotonic() - started,
    }


class SilentEndpoint:
    """A TCP server that accepts connections and never answers: a tactic endpoint that hangs."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=512)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/tactic"
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                self.held.append(self.listener.accept()[0])

    def close(self) -> None:
        self.listener.close()
        for sock in self.held:
            sock.close()


def hanging_tactic(target: Target, posts: int = 50, over: float = 1.0) -> dict[str, Any]:
    """Harmonica compatibility with a tactic endpoint that accepts and never answers: a
    policy pointing there, then ``posts`` violating telemetry messages over ``over`` seconds,
    as a Harmonica system reporting at a modest rate would send them."""
    endpoint = SilentEndpoint()
    preset = json.loads(
        (files("harmonia") / "presets" / "harmonica" / "reg_harmone_score.json").read_text()
    )
    for tactic in preset["tactics"]:
        tactic["tactic_endpoint"] = endpoint.url
    headers = {"Content-Type": "application/json"}
    started = time.monotonic()
    try:
        policy = call(target.port, "POST", "/api/policy", orjson.dumps(preset), headers)

        def violate(i: int) -> dict[str, Any]:
            time.sleep(i * over / posts)
            body = orjson.dumps({"timestamp": float(i), "score": 0.1, "r2_score": 0.1})
            return call(target.port, "POST", "/api/telemetry", body, headers)

        with ThreadPoolExecutor(posts) as pool:
            replies = list(pool.map(violate, range(posts)))
    finally:
        endpoint.close()
    statuses = Counter(str(r["status"]) for r in replies)
    return {
        "status": ", ".join(f"{n}x {s}" for s, n in sorted(statuses.items())),
        "policy_status": policy["status"],
        "statuses": dict(statuses),
        "slowest_reply_s": max(r["seconds"] for r in replies),
        "seconds": time.monotonic() - started,
    }


#: each abusive request, in the order the phases run them (Harmonica's hanging tactic last:
#: its policy stays in force)
ABUSES: dict[str, Callable[[Target], dict[str, Any]]] = {
    "json-deep-telemetry": json_deep_telemetry,
    "json-deep-policy": json_deep_policy,
    "yaml-deep-policy": yaml_deep_policy,
    "body-8mib": body_8mib,
    "body-8mib-batch": body_8mib_batch,
    "chunked-100mb": chunked_100mb,
    "validate-1m-ints": validate_1m_ints,
    "sse-300": sse_subscribers,
    "hanging-tactic": hanging_tactic,
}
DESCRIPTIONS = {
    "baseline": "no abuse",
    "json-deep-telemetry": "100k-level nested JSON to POST /api/telemetry",
    "json-deep-policy": "100k-level nested JSON to POST /api/policy",
    "yaml-deep-policy": "50k-level nested YAML to PUT /api/v1/apps/{app}/policy",
    "body-8mib": "8 MiB JSON to POST /api/telemetry",
    "body-8mib-batch": "8 MiB batch of 10k samples to another app's telemetry",
    "chunked-100mb": "100 MB chunked body, no Content-Length, to app telemetry",
    "validate-1m-ints": "2 MB YAML list of 1M ints to POST /api/v1/policy/validate",
    "sse-300": "300 event-stream subscribers (admin token), held 3 s",
    "hanging-tactic": "Harmonica tactic endpoint that never answers, 50 violations",
}


# -- measuring ---------------------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    """The process's CPU time so far, user and system (from /proc, like `rss_kb`)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class RSSPeak:
    """Samples the server's RSS every 50 ms in a thread, for the peak within a phase."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = rss_kb(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            with contextlib.suppress(OSError):
                self.peak = max(self.peak, rss_kb(self.pid))

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def phase_figures(
    start: float,
    end: float,
    probes: list[tuple[float, float, bool]],
    requests: list[tuple[float, float, float, int]],
) -> dict[str, Any]:
    """The /healthz and steady-client figures for the phase [start, end).

    A probe's or a steady request's wait counts only within the phase: one sent just before
    the next phase's abuse and stuck behind it shows that phase's stall, not this one's.
    Steady requests belong to the phase they fell due in.
    """
    mine = [p for p in probes if start <= p[0] < end]
    overlapping = [p for p in probes if p[0] < end and p[1] > start]
    answered = sorted(p[1] for p in probes if p[2] and start < p[1] < end)
    marks = [start, *answered, end]
    steady = [r for r in requests if start <= r[0] < end]
    sent = [r for r in steady if r[1] >= 0]
    waited = [(min(r[2], end) - r[0]) * 1e3 for r in steady]
    served = [(r[2] - r[1]) * 1e3 for r in sent]
    return {
        "health_probes": len(mine),
        "health_failed": sum(not p[2] for p in mine),
        "health_max_latency_ms": max(
            ((min(p[1], end) - max(p[0], start)) * 1e3 for p in overlapping), default=0.0
        ),
        "health_max_gap_ms": max(b - a for a, b in itertools.pairwise(marks)) * 1e3,
        "steady_requests": len(sent),
        "steady_held_up": len(steady) - len(sent),
        "steady_errors": sum(not 200 <= r[3] < 300 for r in sent),
        "steady_p50_ms": statistics.median(waited) if waited else None,
        "steady_p99_ms": percentile(waited, 99) if waited else None,
        "steady_max_ms": max(waited, default=None),
        "steady_served_p99_ms": percentile(served, 99) if served else None,
    }


def register(port: int, name: str) -> str:
    """Register an app and put the bench's policy in force for it; its token."""
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as setup:
        admin = {"Authorization": f"Bearer {ADMIN}"}
        registered = setup.post(
            "/api/v1/apps",
            json={"name": name, "owner": "bench", "models": ["linear", "svm", "lstm"]},
            headers=admin,
        )
        registered.raise_for_status()
        policy = POLICY.replace(APP, name)
        setup.put(f"/api/v1/apps/{name}/policy", content=policy, headers=admin).raise_for_status()
        return str(registered.json()["token"])


@dataclass
class Window:
    """One phase as it ran: when, what the abusive request got, the server's RSS."""

    name: str
    start: float
    end: float
    outcome: dict[str, Any]
    rss_kb: dict[str, int]
    #: the server's CPU time in the phase: a busy server, or a bench starving it of CPU
    cpu_s: float | None = None


def run_phase(args: argparse.Namespace, name: str, server: Running, target: Target) -> Window:
    """The baseline, or one abusive request and the settling after it."""
    pid = server.process.pid
    rss_before = rss_kb(pid)
    cpu_before = cpu_seconds(pid)
    sampler = RSSPeak(pid)
    start = time.monotonic()
    if name == "baseline":
        outcome: dict[str, Any] = {"status": "-"}
        time.sleep(args.baseline_seconds)
    else:
        outcome = ABUSES[name](target)
        # a stall outlasting the abusive request's own timeout belongs to this phase too
        call(target.port, "GET", "/healthz", timeout=CLIENT_TIMEOUT_S)
        time.sleep(max(0.0, start + args.phase_seconds - time.monotonic()))
        time.sleep(args.settle_seconds)
    end = time.monotonic()
    alive = server.process.poll() is None
    peak = sampler.stop()
    if not alive:
        outcome["status"] = f"{outcome['status']} (server died)"
    rss = {"before_kb": rss_before, "after_kb": rss_kb(pid) if alive else 0, "peak_kb": peak}
    cpu = cpu_seconds(pid) - cpu_before if alive else None
    return Window(name, start, end, outcome, rss, cpu)


def run_once(args: argparse.Namespace, database_url: str) -> list[dict[str, Any]]:
    """One server, the baseline and every abuse phase; the figures per phase."""
    with serve(database_url) as server:
        target = Target(server.port, register(server.port, APP), register(server.port, BULK))
        stop = multiprocessing.Event()
        steady_out: multiprocessing.Queue[Any] = multiprocessing.Queue()
        health_out: multiprocessing.Queue[Any] = multiprocessing.Queue()
        clients = [
            multiprocessing.Process(
                target=steady_client,
                args=(target.port, target.token, args.rate, args.batch, stop, steady_out),
                daemon=True,
            ),
            multiprocessing.Process(
                target=health_poller,
                args=(target.port, args.poll_interval, stop, health_out),
                daemon=True,
            ),
        ]
        for client in clients:
            client.start()
        windows: list[Window] = []
        try:
            time.sleep(1.0)  # connections open, caches warm: the baseline starts after this
            for name in ["baseline", *args.phases]:
                if server.process.poll() is not None:
                    windows.append(Window(name, 0.0, 0.0, {"status": "server died"}, {}))
                    continue
                windows.append(run_phase(args, name, server, target))
                print(f"  {name}: {windows[-1].outcome['status']}", flush=True)
        finally:
            stop.set()
        requests = steady_out.get(timeout=CLIENT_TIMEOUT_S + 30)
        probes = health_out.get(timeout=CLIENT_TIMEOUT_S + 30)
        for client in clients:
            client.join(timeout=10)
    return [
        {
            "phase": w.name,
            "abuse": DESCRIPTIONS[w.name],
            "outcome": w.outcome,
            "server_rss_kb": w.rss_kb,
            "server_cpu_s": w.cpu_s,
            "seconds": w.end - w.start,
            **(phase_figures(w.start, w.end, probes, requests) if w.end else {}),
        }
        for w in windows
    ]


# -- reporting ---------------------------------------------------------------------------------
NUMBERS = (
    "health_max_latency_ms",
    "health_max_gap_ms",
    "health_failed",
    "steady_p50_ms",
    "steady_p99_ms",
    "steady_max_ms",
    "steady_served_p99_ms",
    "steady_held_up",
    "steady_errors",
    "server_cpu_s",
)


def medians(runs: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per phase, the median of each figure over the runs, and every run's outcome."""
    out = []
    for i, first in enumerate(runs[0]):
        phases = [run[i] for run in runs]
        merged: dict[str, Any] = {
            "phase": first["phase"],
            "abuse": first["abuse"],
            "outcomes": [p["outcome"]["status"] for p in phases],
        }
        for key in NUMBERS:
            values = [p[key] for p in phases if p.get(key) is not None]
            merged[key] = statistics.median(values) if values else None
        for key in ("before_kb", "after_kb", "peak_kb"):
            merged[f"server_rss_{key}"] = statistics.median(
                p["server_rss_kb"].get(key, 0) for p in phases
            )
        out.append(merged)
    baseline = out[0]["steady_p99_ms"]
    for phase in out:
        stall = max(phase["health_max_latency_ms"] or 0.0, phase["health_max_gap_ms"] or 0.0)
        ratio = (phase["steady_p99_ms"] or 0.0) / baseline if baseline else None
        phase["stall_ms"] = stall
        phase["steady_p99_ratio"] = ratio
        phase["meets_target"] = (
            stall <= STALL_TARGET_MS
            and ratio is not None
            and ratio <= P99_TARGET_RATIO
            and not phase["steady_errors"]
        )
    return out


def show(phases: list[dict[str, Any]], repeat: int) -> None:
    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:,.0f}" if value >= 100 else f"{value:.1f}"

    table = Table(
        title=(
            f"Abusive requests vs. a steady client and /healthz (median of {repeat})"
            if repeat > 1
            else "Abusive requests vs. a steady client and /healthz"
        ),
        caption=(
            f"target: no /healthz stall over {STALL_TARGET_MS:.0f} ms; "
            f"steady p99 within {P99_TARGET_RATIO:.0f}x baseline, no errors"
        ),
    )
    for column in (
        "phase",
        "abusive request got",
        "healthz max ms",
        "max gap ms",
        "steady p99 ms",
        "x base",
        "errors",
        "server CPU s",
        "RSS MB before→after (peak)",
        "target",
    ):
        table.add_column(column, justify="left" if column in ("phase", "target") else "right")
    for p in phases:
        ratio = p["steady_p99_ratio"]
        table.add_row(
            p["phase"],
            " | ".join(dict.fromkeys(str(o) for o in p["outcomes"])),
            ms(p["health_max_latency_ms"]),
            ms(p["health_max_gap_ms"]),
            ms(p["steady_p99_ms"]),
            "-" if ratio is None else f"{ratio:.1f}",
            f"{p['steady_errors']:.0f}" if p["steady_errors"] is not None else "-",
            "-" if p["server_cpu_s"] is None else f"{p['server_cpu_s']:.1f}",
            f"{p['server_rss_before_kb'] / 1024:.0f}→{p['server_rss_after_kb'] / 1024:.0f}"
            f" ({p['server_rss_peak_kb'] / 1024:.0f})",
            "[green]ok[/]" if p["meets_target"] else "[red]missed[/]",
        )
    console = Console()
    console.width = max(console.width, 150)  # the table is wide; a pipe says 80
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs, each on a fresh server")
    parser.add_argument(
        "--database-url",
        default="",
        help="a PostgreSQL URL: each run gets a fresh database on that server (default SQLite)",
    )
    parser.add_argument("--rate", type=float, default=20.0, help="steady batches per second")
    parser.add_argument("--batch", type=int, default=50, help="samples per steady batch")
    parser.add_argument("--poll-interval", type=float, default=0.01, help="seconds")
    parser.add_argument("--baseline-seconds", type=float, default=6.0)
    parser.add_argument("--phase-seconds", type=float, default=3.0)
    parser.add_argument("--settle-seconds", type=float, default=1.0)
    parser.add_argument(
        "--phases", nargs="+", choices=list(ABUSES), default=list(ABUSES), metavar="PHASE"
    )
    parser.add_argument("--out", type=Path, default=Path("build/bench/abuse.json"))
    args = parser.parse_args()

    runs = []
    for run in range(args.repeat):
        print(f"run {run + 1}/{args.repeat}", flush=True)
        if args.database_url:
            with temporary_database(args.database_url) as url:
                runs.append(run_once(args, url))
        else:
            runs.append(run_once(args, ""))
    summary = medians(runs)
    show(summary, args.repeat)
    result = {
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "database": "postgresql" if args.database_url else "sqlite",
        "targets": {"stall_ms": STALL_TARGET_MS, "steady_p99_ratio": P99_TARGET_RATIO},
        "settings": {
            k: v for k, v in vars(args).items() if k not in ("out", "database_url", "phases")
        },
        "median": summary,
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
