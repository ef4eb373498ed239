"""Telemetry ingestion: samples per second in batches of 1,000, over real HTTP and straight
into the store, on SQLite and (with ``--database``) on PostgreSQL in the same run; nothing
lost, and the memory of the process that stores them.

HTTP: starts ``harmonia serve`` as a separate process on a free loopback port, registers an
app with a HarmonE policy (so the live loop runs on every sample), and posts batches from
``--clients`` processes, in each ``--form``: ``rows`` (``{"samples": [...]}``) and
``columns`` (``{"columns": {...}}``, as the sdk sends them; figures ``…/http-columns``).
Store: ``Store.ingest`` called directly from ``--clients`` threads with the rows the server
would hand it (the figure without HTTP, validation and the loop).

Each run gets a fresh database: a temporary SQLite folder, and on the PostgreSQL server of
``--database`` a database of its own (``harmonia_bench_…``, dropped after the run; the URL's
own database is only used to create it). Commits are durable as each backend is configured:
PostgreSQL's ``synchronous_commit`` and ``fsync`` are read and recorded. The figure is the
median of ``--runs`` runs. Prints the figures and writes ``build/bench/ingest.json``.

    .venv/bin/python bench/bench_ingest.py [--samples 200000] [--clients 2] [--runs 3] \\
        [--database postgresql+psycopg://postgres@127.0.0.1:5432/test] [--mode http,store] \\
        [--form rows,columns]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import random
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

from harmonia.core.application import Application
from harmonia.sdk._wire import to_columns
from harmonia.store import Store, sqlite_url

ADMIN = "bench-admin"
MODELS = ["linear", "svm", "lstm"]
POLICY = """
policy: bench
system: bench
models: [linear, svm, lstm]
initial_model: lstm
window: 200 samples
strategy: harmone
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def samples_of(count: int, size: int, seed: int, start: float) -> list[list[dict[str, Any]]]:
    """``count`` batches of ``size`` samples, one a second from ``start`` (a few days ago:
    the samples span days, as a backlog would, and never run ahead of the server's clock)."""
    rng = random.Random(seed)
    out = []
    for b in range(count):
        samples = []
        for i in range(size):
            target = rng.gauss(100, 20)
            samples.append(
                {
                    "service": "forecast",
                    "model": "lstm",
                    "model_version": 1,
                    "ts": start + float(b * size + i),
                    "latency_ms": 0.1,
                    "energy_j": 0.001,
                    "energy_source": "estimate",
                    "prediction": target + rng.gauss(0, 5),
                    "target": target,
                    "drift_value": target,
                    "metrics": {},
                }
            )
        out.append(samples)
    return out


def post_batches(
    base: str,
    token: str,
    count: int,
    size: int,
    seed: int,
    start: float,
    ready: Any,
    done: Any,
    form: str = "rows",
) -> None:
    """One client: build ``count`` batches (as ``form``: rows or columns), wait for the
    others, post them, report how many samples it sent on ``done``."""
    bodies = [
        orjson.dumps(
            {"instance": f"i-{seed}", "columns": to_columns(samples)}
            if form == "columns"
            else {"instance": f"i-{seed}", "samples": samples}
        )
        for samples in samples_of(count, size, seed, start)
    ]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    ready.wait()
    with httpx.Client(base_url=base, timeout=60) as client:
        for body in bodies:
            reply = client.post("/api/v1/apps/bench/telemetry", content=body, headers=headers)
            reply.raise_for_status()
    done.put(count * size)


@contextmanager
def fresh_database(backend: str) -> Iterator[str]:
    """A new empty database: a temporary SQLite folder, or a database of its own on the
    PostgreSQL server of URL ``backend``, dropped afterwards."""
    if backend == "sqlite":
        yield sqlite_url(Path(tempfile.mkdtemp(prefix="harmonia-bench-")))
        return
    name = f"harmonia_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(backend, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(backend).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def durability(url: str) -> dict[str, str]:
    """How a commit is made durable on this database."""
    engine = create_engine(url)
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            return {"journal_mode": "wal", "synchronous": "normal"}  # as `Store` sets them
        found = {
            setting: str(connection.exec_driver_sql(f"SHOW {setting}").scalar())
            for setting in ("fsync", "synchronous_commit", "wal_sync_method", "server_version")
        }
    engine.dispose()
    return found


def http_run(
    url: str, args: argparse.Namespace, start: float, form: str = "rows"
) -> dict[str, Any]:
    """Post the batches (as ``form``) to a server over ``url``; samples per second, stored,
    memory."""
    data_dir = Path(tempfile.mkdtemp(prefix="harmonia-bench-"))
    port = free_port()
    env = {
        **os.environ,
        "HARMONIA_DATA_DIR": str(data_dir),
        "HARMONIA_ADMIN_TOKEN": ADMIN,
        "HARMONIA_DATABASE_URL": url,
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "harmonia.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    load_before = os.getloadavg()
    try:
        with httpx.Client(base_url=base, timeout=30) as client:
            for _ in range(300):
                try:
                    client.get("/healthz")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            admin = {"Authorization": f"Bearer {ADMIN}"}
            reply = client.post(
                "/api/v1/apps",
                json={"name": "bench", "owner": "bench", "models": MODELS},
                headers=admin,
            )
            reply.raise_for_status()
            token = reply.json()["token"]
            client.put(
                "/api/v1/apps/bench/policy", content=POLICY, headers=admin
            ).raise_for_status()

        # Each client is its own process, as separate clients are: threads of one process
        # would share its GIL and measure the client, not the server.
        per_client = args.samples // args.batch // args.clients
        ready = multiprocessing.Barrier(args.clients + 1)
        done: multiprocessing.Queue[int] = multiprocessing.Queue()
        clients = [
            multiprocessing.Process(
                target=post_batches,
                args=(base, token, per_client, args.batch, seed, start, ready, done, form),
            )
            for seed in range(args.clients)
        ]
        for client_process in clients:
            client_process.start()
        ready.wait()  # every client has built its batches: the clock starts now
        started = time.perf_counter()
        rss_before = rss_kb(server.pid)
        rss_peak = rss_before
        while any(c.is_alive() for c in clients):
            rss_peak = max(rss_peak, rss_kb(server.pid))
            time.sleep(0.2)
        seconds = time.perf_counter() - started
        sent = [done.get(timeout=5) for _ in clients]
        rss_after = rss_kb(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=10)
    store = Store(url)
    try:
        stored = store.count_telemetry(store.app("bench"))
    finally:
        store.close()
    total = sum(sent)
    return {
        "samples_sent": total,
        "samples_stored": stored,
        "nothing_lost": stored == total,
        "seconds": seconds,
        "samples_per_s": total / seconds,
        "rss_kb": {"before": rss_before, "peak": max(rss_peak, rss_after), "after": rss_after},
        "load_before": load_before,
        "load_after": os.getloadavg(),
    }


def store_run(url: str, args: argparse.Namespace, start: float) -> dict[str, Any]:
    """Call ``Store.ingest`` from ``--clients`` threads with the rows the server would hand
    it (validated, placed); samples per second, stored, this process's memory."""
    store = Store(url)
    try:
        app, _token = store.create_app(Application.single("bench", MODELS))
        per_client = args.samples // args.batch // args.clients
        extra = {"app": "bench", "stage": "main", "trace_id": None, "input_summary": None}
        work = [
            [
                [{**sample, **extra, "instance": f"i-{seed}"} for sample in samples]
                for samples in samples_of(per_client, args.batch, seed, start)
            ]
            for seed in range(args.clients)
        ]
        ready = threading.Barrier(args.clients + 1)

        def client(batches: list[list[dict[str, Any]]], instance: str) -> None:
            ready.wait()
            for rows in batches:
                store.ingest(app, rows, [], pull=["forecast"], instance=instance)

        threads = [
            threading.Thread(target=client, args=(batches, f"i-{seed}"))
            for seed, batches in enumerate(work)
        ]
        for thread in threads:
            thread.start()
        load_before = os.getloadavg()
        rss_before = rss_kb(os.getpid())
        ready.wait()
        started = time.perf_counter()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - started
        rss_after = rss_kb(os.getpid())
        total = sum(len(rows) for batches in work for rows in batches)
        stored = store.count_telemetry(app)
    finally:
        store.close()
    return {
        "samples_sent": total,
        "samples_stored": stored,
        "nothing_lost": stored == total,
        "seconds": seconds,
        "samples_per_s": total / seconds,
        "rss_kb": {"before": rss_before, "after": rss_after},
        "load_before": load_before,
        "load_after": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (the median)")
    parser.add_argument(
        "--database",
        action="append",
        default=[],
        help="a PostgreSQL server to measure beside SQLite (its URL; repeatable); "
        "'sqlite' alone measures SQLite only",
    )
    parser.add_argument("--no-sqlite", action="store_true", help="leave SQLite out")
    parser.add_argument("--mode", default="http,store", help="http, store or both (comma)")
    parser.add_argument(
        "--form", default="rows,columns", help="the HTTP batches' form: rows, columns or both"
    )
    parser.add_argument("--out", type=Path, default=Path("build/bench/ingest.json"))
    args = parser.parse_args()

    backends = ([] if args.no_sqlite else ["sqlite"]) + [
        url for url in args.database if url != "sqlite"
    ]
    forms = [f.strip() for f in args.form.split(",") if f.strip()]
    modes = [
        m if m != "http" or form == "rows" else f"http-{form}"
        for m in (m.strip() for m in args.mode.split(",") if m.strip())
        for form in (forms if m == "http" else ["rows"])
    ]
    run_of: dict[str, Any] = {
        "http": http_run,
        "http-columns": lambda url, args, start: http_run(url, args, start, "columns"),
        "store": store_run,
    }
    # a span of days that ends an hour ago: samples never run ahead of the server's clock
    start = float(int(time.time()) - 3600 - args.samples)
    figures: dict[str, Any] = {}
    for backend in backends:
        name = "sqlite" if backend == "sqlite" else make_url(backend).get_backend_name()
        for mode in modes:
            runs = []
            for _ in range(args.runs):
                with fresh_database(backend) as url:
                    runs.append({"durability": durability(url), **run_of[mode](url, args, start)})
                print(
                    f"{name:<10} {mode:<12} {runs[-1]['samples_per_s']:>10,.0f} samples/s "
                    f"(stored {runs[-1]['samples_stored']:,} of {runs[-1]['samples_sent']:,}, "
                    f"load {runs[-1]['load_before'][0]:.2f})",
                    flush=True,
                )
            figures[f"{name}/{mode}"] = {
                "median_samples_per_s": statistics.median(r["samples_per_s"] for r in runs),
                "nothing_lost": all(r["nothing_lost"] for r in runs),
                "runs": runs,
            }
    result = {
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "samples": args.samples,
        "batch": args.batch,
        "clients": args.clients,
        "forms": forms,
        "figures": figures,
    }
    print(json.dumps(result, indent=2))
    for key, figure in figures.items():
        print(
            f"{key:<18} median {figure['median_samples_per_s']:>10,.0f} samples/s"
            f"  nothing lost: {figure['nothing_lost']}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
