"""Telemetry ingestion over real HTTP: samples per second in batches of 1,000, stored on
SQLite, nothing lost, and the server's memory while the samples go in.

Starts ``harmonia serve`` as a separate process on a free loopback port, registers an app
with a HarmonE policy (so the live loop runs on every sample), and posts batches from
``--clients`` threads. Prints the figures and writes ``build/bench/ingest.json``.

    .venv/bin/python bench/bench_ingest.py [--samples 200000] [--clients 2]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from harmonia.store import Store, sqlite_url

ADMIN = "bench-admin"
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


def batches(count: int, size: int, seed: int) -> list[bytes]:
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
                    "ts": float(b * size + i),
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
    base: str, token: str, count: int, size: int, seed: int, ready: Any, done: Any
) -> None:
    """One client: build ``count`` batches, wait for the others, post them, report how many
    samples it sent on ``done``."""
    bodies = batches(count, size, seed)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    ready.wait()
    with httpx.Client(base_url=base, timeout=30) as client:
        for body in bodies:
            reply = client.post("/api/v1/apps/bench/telemetry", content=body, headers=headers)
            reply.raise_for_status()
    done.put(count * size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("build/bench/ingest.json"))
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="harmonia-bench-"))
    port = free_port()
    env = {**os.environ, "HARMONIA_DATA_DIR": str(data_dir), "HARMONIA_ADMIN_TOKEN": ADMIN}
    server = subprocess.Popen(
        [sys.executable, "-m", "harmonia.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=30) as client:
            for _ in range(100):
                try:
                    client.get("/healthz")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            admin = {"Authorization": f"Bearer {ADMIN}"}
            reply = client.post(
                "/api/v1/apps",
                json={"name": "bench", "owner": "bench", "models": ["linear", "svm", "lstm"]},
                headers=admin,
            )
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
                args=(base, token, per_client, args.batch, seed, ready, done),
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
    store = Store(sqlite_url(data_dir))
    stored = store.count_telemetry(store.app("bench"))
    total = sum(sent)
    result = {
        "machine": platform.platform(),
        "samples_sent": total,
        "samples_stored": stored,
        "nothing_lost": stored == total,
        "seconds": seconds,
        "samples_per_s": total / seconds,
        "batch": args.batch,
        "clients": args.clients,
        "server_rss_kb": {
            "before": rss_before,
            "peak": max(rss_peak, rss_after),
            "after": rss_after,
        },
    }
    print(json.dumps(result, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
