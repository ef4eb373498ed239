"""From a violating batch's arrival to the action: in the telemetry reply (pull) and at the
effector (push), idle and while other telemetry is ingested at a steady rate.

Starts ``harmonia serve`` as its own process on loopback. Every probe batch is one sample
that violates ``mean(error) > 0.5`` over a one-sample window, so each one yields an action.
Prints p50/p99 in milliseconds and writes ``build/bench/latency.json``.

    .venv/bin/python bench/bench_latency.py [--probes 300] [--load-rate 10000]
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import multiprocessing
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson
from bench_ingest import batches, free_port

ADMIN = "bench-admin"
POLICY = """
policy: {name}
system: {name}
models: [linear, svm, lstm]
initial_model: lstm
window: 1 samples
strategy: switch
boundaries:
  - when: mean(error) > 0.5
    then: switch_model
"""
LOAD_POLICY = """
policy: load
system: load
models: [linear, svm, lstm]
window: 200 samples
strategy: harmone
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


class Effector:
    """Queues the time each pushed action arrives (perf_counter, same machine)."""

    def __init__(self) -> None:
        self.arrivals: queue.Queue[tuple[float, str]] = queue.Queue()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as any real effector's server does
            disable_nagle_algorithm = True  # headers and body go out in two writes

            def do_POST(self) -> None:
                arrived = time.perf_counter()
                action = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.arrivals.put((arrived, action["model"]))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/effector"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def load_telemetry(base: str, token: str, rate: float, stop: Any) -> None:
    """Post 1,000-sample batches at ``rate`` samples/s until ``stop`` is set."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    load = batches(200, 1000, 7)
    with httpx.Client(base_url=base, timeout=30) as client:
        interval = 1000 / rate
        next_at = time.perf_counter()
        for body in itertools.cycle(load):
            if stop.is_set():
                return
            client.post("/api/v1/apps/load/telemetry", content=body, headers=headers)
            next_at += interval
            time.sleep(max(0.0, next_at - time.perf_counter()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, default=300)
    parser.add_argument("--load-rate", type=float, default=10_000.0, help="samples/s of load")
    parser.add_argument("--out", type=Path, default=Path("build/bench/latency.json"))
    args = parser.parse_args()

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "HARMONIA_DATA_DIR": tempfile.mkdtemp(prefix="harmonia-latency-"),
        "HARMONIA_ADMIN_TOKEN": ADMIN,
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "harmonia.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    effector = Effector()
    admin = {"Authorization": f"Bearer {ADMIN}"}
    results: dict[str, Any] = {"probes": args.probes, "load_rate": args.load_rate}
    try:
        client = httpx.Client(base_url=base, timeout=30)
        for _ in range(100):
            try:
                client.get("/healthz")
                break
            except httpx.TransportError:
                time.sleep(0.1)
        tokens = {}
        for name, url in (("pull", None), ("push", effector.url), ("load", None)):
            reply = client.post(
                "/api/v1/apps",
                json={
                    "name": name,
                    "owner": "b",
                    "models": ["linear", "svm", "lstm"],
                    "effector_url": url,
                },
                headers=admin,
            )
            tokens[name] = reply.json()["token"]
            policy = LOAD_POLICY if name == "load" else POLICY.format(name=name)
            client.put(
                f"/api/v1/apps/{name}/policy", content=policy, headers=admin
            ).raise_for_status()

        def probe_body(i: int, model: str) -> bytes:
            sample = {
                "model": model,
                "model_version": 1,
                "ts": float(i),
                "metrics": {"error": 1.0},
            }
            return orjson.dumps({"samples": [sample]})

        def measure(mode: str) -> dict[str, float]:
            # http.client, not httpx: a lean client, so the figure is the server's and
            # loopback's (httpx alone adds about 0.6 ms per request here).
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            headers = {
                "Authorization": f"Bearer {tokens[mode]}",
                "Content-Type": "application/json",
            }
            latencies = []
            # The probe applies each action: its next sample reports the model switched to
            # (the server decides an action once, not again while it is still on its way).
            model = "lstm"
            for i in range(args.probes):
                body = probe_body(i, model)
                started = time.perf_counter()
                connection.request("POST", f"/api/v1/apps/{mode}/telemetry", body, headers)
                reply = orjson.loads(connection.getresponse().read())
                if mode == "pull":
                    assert reply["actions"], "a violating batch must carry its action"
                    latencies.append(time.perf_counter() - started)
                    model = reply["actions"][0]["model"]
                else:
                    arrived, model = effector.arrivals.get(timeout=5)
                    latencies.append(arrived - started)
                time.sleep(0.005)
            connection.close()
            ms = [x * 1e3 for x in latencies]
            return {
                "p50_ms": statistics.median(ms),
                "p99_ms": percentile(ms, 99),
                "max_ms": max(ms),
            }

        for mode in ("pull", "push"):
            results[f"{mode}_idle"] = measure(mode)

        # The load comes from another process, as from another client: in this process its
        # thread would hold the GIL while the probe waits, and time the bench, not the server.
        stop = multiprocessing.Event()
        loader = multiprocessing.Process(
            target=load_telemetry, args=(base, tokens["load"], args.load_rate, stop), daemon=True
        )
        loader.start()
        time.sleep(0.5)
        for mode in ("pull", "push"):
            results[f"{mode}_under_load"] = measure(mode)
        stop.set()
        loader.join(timeout=30)
    finally:
        server.terminate()
        server.wait(timeout=10)
        effector.server.shutdown()
    print(json.dumps(results, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
