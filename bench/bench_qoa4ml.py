"""QoA4ML reports per second through the AMQP bridge, stored, none lost.

Starts a Harmonia server in this process (SQLite in a temporary directory, or the database
named by ``--database-url``) with the AMQP broker (``--amqp-url``, RabbitMQ on loopback by
default), registers an application with one stage, then publishers — each its own process,
with pika — send ``MLReport`` messages as QoA4ML 0.3.18 writes them (the same non-durable
topic exchange ``<app>_exchange``, routing key ``<app>.<user>.<stage>.<instance>.client<n>``,
QoA4ML's 1 s expiry) for ``--instances`` instances, as fast as the broker takes them or at
``--rate`` reports/s in all. Target: >= 10,000 reports/s, none lost.

Measured, per run: from the first report published to the last sample stored. Every report
has its own inference id, stored as the sample's ``trace_id``, so the count is honest:
``lost = published - distinct reports stored`` (a report stored twice, after a redelivery,
counts once, in ``duplicates``). Also the CPU time the server (this process), the publishers
and the broker (``beam.smp``, where /proc shows it) spent meanwhile: on a small machine they
share the cores, and that, not the bridge alone, sets the ceiling. With ``--runs`` the run is
repeated and the medians are given. Prints the figures and writes ``build/bench/qoa4ml.json``.

    .venv/bin/python bench/bench_qoa4ml.py [--reports 50000] [--publishers 2] [--runs 3]

QoA4ML's own connector opens a connection per report (a few hundred a second per client);
the publishers here keep theirs, to load the bridge rather than the broker's handshakes.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from harmonia.compat.qoa4ml.routes import QoA4MLOptions
from harmonia.server.background import BackgroundServer
from harmonia.store import Store, sqlite_url

ADMIN = "bench-admin"
KEY = "bench-key"
TARGET = 10_000
#: a run ends when nothing new was stored for this long (after the publishers finished)
QUIET_S = 5.0


def report(instance: str, app: str, ts: float, latency_s: float) -> dict[str, Any]:
    """An MLReport as QoA4ML 0.3.18's ``QoaClient.report()`` writes it."""
    metric = {"unit": None, "description": ""}
    return {
        "metadata": {
            "client_config": {
                "id": str(uuid.uuid4()),
                "name": "bench",
                "user_id": "bench",
                "username": "",
                "instance_id": instance,
                "instance_name": "",
                "stage_id": "detect",
                "functionality": "yolo",
                "application_name": app,
                "role": "ml",
                "run_id": "r1",
                "environment": "Edge",
                "custom_info": "",
                "logging_level": 2,
            },
            "timestamp": ts,
            "runtime": 0.001,
        },
        "service": {
            "detect": {
                "name": "detect",
                "metrics": {
                    "response_time": {
                        instance: {
                            "metric_name": "response_time",
                            "records": [{"startTime": ts - latency_s, "responseTime": latency_s}],
                            **metric,
                        }
                    },
                    "availability": {
                        instance: {"metric_name": "availability", "records": [0.99], **metric}
                    },
                },
            }
        },
        "data": {},
        "ml_inference": {
            instance: {
                "inference_id": str(uuid.uuid4()),
                "instance_id": instance,
                "functionality": "yolo",
                "metrics": [
                    {"metric_name": "accuracy", "records": [0.8], "unit": None, "description": None}
                ],
                "prediction": {"label": 1.0, "confidence": 0.8},
            }
        },
    }


def publish(
    amqp_url: str, app: str, instances: list[str], count: int, rate: float, start: Any, out: Any
) -> None:
    """Build ``count`` reports, say so on ``out``, publish them once ``start`` is set (at
    ``rate`` a second, 0: at once); then put (published, seconds, cpu seconds) on ``out``."""
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    channel.exchange_declare(exchange=f"{app}_exchange", exchange_type="topic")
    properties = pika.BasicProperties(expiration="1000")
    bodies = []
    for i in range(count):
        instance = instances[i % len(instances)]
        key = f"{app}.bench.detect.{instance}.client1"
        body = json.dumps(report(instance, app, time.time(), 0.01 + (i % 7) * 0.001))
        bodies.append((key, body))
    out.put("ready")
    start.wait()
    began, cpu, published = time.perf_counter(), time.process_time(), 0
    for key, body in bodies:
        if rate and published % 100 == 0:  # pace in steps of 100 reports
            time.sleep(max(0.0, began + published / rate - time.perf_counter()))
        channel.basic_publish(f"{app}_exchange", key, body, properties)
        published += 1
    out.put((published, time.perf_counter() - began, time.process_time() - cpu))
    connection.close()


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class CPUClock:
    """CPU seconds used so far by this process (the server), by RabbitMQ's Erlang VM
    (``beam.smp``) and by the whole machine (other people's work included), read from
    /proc where there is one (else None)."""

    def __init__(self) -> None:
        self.broker = [p for p in Path("/proc").glob("[0-9]*/stat") if _name(p) == "beam.smp"]

    def read(self) -> dict[str, float | None]:
        return {
            "server_s": time.process_time(),
            "broker_s": sum(_used(p) for p in self.broker) if self.broker else None,
            "machine_s": _machine(),
        }


def _name(stat: Path) -> str:
    try:
        text = stat.read_text()
    except OSError:
        return ""
    return text[text.find("(") + 1 : text.rfind(")")]


def _used(stat: Path) -> float:
    text = stat.read_text()
    fields = text[text.rfind(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime


def _machine() -> float | None:
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    return sum(int(v) for i, v in enumerate(fields) if i not in (3, 4)) / _TICKS  # busy


def register(url: str, app: str, instance: str) -> None:
    reply = httpx.post(
        f"{url}/registration?key={KEY}",
        json={
            "application_name": app,
            "run_id": "r1",
            "user_id": "bench",
            "stage_id": "detect",
            "instance_id": instance,
            "functionality": "yolo",
        },
        timeout=30,
    )
    reply.raise_for_status()


def wait_stored(
    store: Store, app: str, total: int, workers: list[Any], clock: CPUClock
) -> tuple[int, float, dict[str, float | None]]:
    """Poll until ``total`` samples are stored, or nothing new came for `QUIET_S` after the
    publishers finished; the count, when the last one was seen and the CPU clock then."""
    handle = store.app(app)
    stored, last_change, used = 0, time.perf_counter(), clock.read()
    while True:
        time.sleep(0.05)
        now_stored = store.count_telemetry(handle)
        if now_stored != stored:
            stored, last_change, used = now_stored, time.perf_counter(), clock.read()
        publishing = any(worker.is_alive() for worker in workers)
        if stored >= total or (not publishing and time.perf_counter() - last_change > QUIET_S):
            return stored, last_change, used


def run_once(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """One burst of ``args.reports`` reports through a fresh server; its figures."""
    store = Store(args.database_url or sqlite_url(tmp))
    options = QoA4MLOptions(registration_key=KEY)
    background = BackgroundServer(
        store, ADMIN, data_dir=tmp, amqp_url=args.amqp_url, qoa4ml_options=options
    )
    with background as url:
        app = f"bench{uuid.uuid4().hex[:6]}"
        instances = [str(uuid.uuid4()) for _ in range(args.instances)]
        register(url, app, instances[0])
        per = args.reports // args.publishers
        start = multiprocessing.Event()
        out: multiprocessing.Queue[Any] = multiprocessing.Queue()
        rate = args.rate / args.publishers
        workers = [
            multiprocessing.Process(
                target=publish, args=(args.amqp_url, app, instances, per, rate, start, out)
            )
            for _ in range(args.publishers)
        ]
        for worker in workers:
            worker.start()
        for _ in workers:  # each builds its messages first
            out.get(timeout=120)
        load, clock = os.getloadavg()[0], CPUClock()
        before = clock.read()
        began = time.perf_counter()
        start.set()
        stored, finished, after = wait_stored(store, app, per * args.publishers, workers, clock)
        sent = [out.get(timeout=30) for _ in workers]
        for worker in workers:
            worker.join()
        served: Any = background.server.config.app
        bridge = served.state.qoa4ml.bridge
        counters = {name: getattr(bridge, name, None) for name in ("dropped", "failed")}
    traces = {row["trace_id"] for row in store.telemetry(store.app(app))}
    store.close()

    published = sum(s[0] for s in sent)
    unique = len(traces - {None})
    seconds = finished - began
    publish_seconds = max(s[1] for s in sent)
    cpu = {name: _delta(before[name], after[name]) for name in before}
    cpu["publishers_s"] = round(sum(s[2] for s in sent), 2)
    return {
        "published": published,
        "stored": unique,
        "duplicates": stored - unique,
        "lost": published - unique,
        "seconds": round(seconds, 3),
        "reports_per_s": round(unique / seconds, 1) if seconds > 0 else None,
        "offered_per_s": round(published / publish_seconds, 1) if publish_seconds > 0 else None,
        **counters,
        "cpu": cpu,
        #: the server's CPU per report it stored; the others' per report published
        "cpu_us_per_report": {
            k.removesuffix("_s"): _per(v, unique if k == "server_s" else published)
            for k, v in cpu.items()
        },
        "machine_cores_busy": None
        if cpu["machine_s"] is None or seconds <= 0
        else round(cpu["machine_s"] / seconds, 2),
        "load_1m_before": round(load, 2),
    }


def _per(seconds: float | None, reports: int) -> int | None:
    return None if seconds is None or reports <= 0 else round(seconds / reports * 1e6)


def _delta(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else round(after - before, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--reports", type=int, default=50_000)
    parser.add_argument("--publishers", type=int, default=2)
    parser.add_argument("--instances", type=int, default=20)
    parser.add_argument("--rate", type=float, default=0, help="reports/s in all (0: unpaced)")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--amqp-url", default="amqp://guest:guest@127.0.0.1:5672/%2F")
    parser.add_argument("--database-url", default="")
    parser.add_argument("--out", type=Path, default=Path("build/bench/qoa4ml.json"))
    args = parser.parse_args()

    runs = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            runs.append(run_once(args, Path(tmp)))
    rates = [r["reports_per_s"] or 0.0 for r in runs]
    result = {
        "bench": "qoa4ml",
        "reports": args.reports // args.publishers * args.publishers,
        "median_reports_per_s": statistics.median(rates),
        "median_lost": statistics.median(r["lost"] for r in runs),
        "target_reports_per_s": TARGET,
        "met": all(r["lost"] == 0 for r in runs) and statistics.median(rates) >= TARGET,
        "runs": runs,
        "publishers": args.publishers,
        "rate": args.rate or None,
        "instances": args.instances,
        "database": "postgresql" if args.database_url else "sqlite",
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    print(json.dumps(result, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
