"""QoA4ML reports per second through the AMQP bridge, stored, none lost.

Starts a Harmonia server in this process (SQLite in a temporary directory, or the database
named by ``--database-url``) with the AMQP broker (``--amqp-url``, RabbitMQ on loopback by
default), registers an application with one stage, then publishers — each its own process,
with pika — send ``MLReport`` messages as QoA4ML 0.3.18 writes them (the same non-durable
topic exchange ``<app>_exchange``, routing key ``<app>.<user>.<stage>.<instance>.client<n>``,
QoA4ML's 1 s expiry) for ``--instances`` instances. Measured: from the first report published
to the last sample stored; lost = published - stored. Target: >= 10,000 reports/s, none lost.
Prints the figures and writes ``build/bench/qoa4ml.json``.

    .venv/bin/python bench/bench_qoa4ml.py [--reports 50000] [--publishers 2]

QoA4ML's own connector opens a connection per report (a few hundred a second per client);
the publishers here keep theirs, to load the bridge rather than the broker's handshakes.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
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


def publish(amqp_url: str, app: str, instances: list[str], count: int, start: Any) -> None:
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
    start.wait()
    for key, body in bodies:
        channel.basic_publish(f"{app}_exchange", key, body, properties)
    connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=50_000)
    parser.add_argument("--publishers", type=int, default=2)
    parser.add_argument("--instances", type=int, default=20)
    parser.add_argument("--amqp-url", default="amqp://guest:guest@127.0.0.1:5672/%2F")
    parser.add_argument("--database-url", default="")
    parser.add_argument("--out", type=Path, default=Path("build/bench/qoa4ml.json"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        store = Store(args.database_url or sqlite_url(Path(tmp)))
        options = QoA4MLOptions(registration_key=KEY)
        background = BackgroundServer(
            store, ADMIN, data_dir=Path(tmp), amqp_url=args.amqp_url, qoa4ml_options=options
        )
        with background as url:
            app = f"bench{uuid.uuid4().hex[:6]}"
            instances = [str(uuid.uuid4()) for _ in range(args.instances)]
            reply = httpx.post(
                f"{url}/registration?key={KEY}",
                json={
                    "application_name": app,
                    "run_id": "r1",
                    "user_id": "bench",
                    "stage_id": "detect",
                    "instance_id": instances[0],
                    "functionality": "yolo",
                },
                timeout=30,
            )
            reply.raise_for_status()
            per = args.reports // args.publishers
            total = per * args.publishers
            start = multiprocessing.Event()
            workers = [
                multiprocessing.Process(
                    target=publish, args=(args.amqp_url, app, instances, per, start)
                )
                for _ in range(args.publishers)
            ]
            for worker in workers:
                worker.start()
            time.sleep(2.0)  # the publishers build their messages
            began = time.perf_counter()
            start.set()
            handle = store.app(app)
            stored, last_change, finished = 0, time.perf_counter(), began
            while True:
                time.sleep(0.05)
                now_stored = store.count_telemetry(handle)
                if now_stored != stored:
                    stored, last_change = now_stored, time.perf_counter()
                    finished = last_change
                if stored >= total or time.perf_counter() - last_change > 5.0:
                    break
            for worker in workers:
                worker.join()
        store.close()

    seconds = finished - began
    result = {
        "bench": "qoa4ml",
        "reports": total,
        "stored": stored,
        "lost": total - stored,
        "seconds": round(seconds, 3),
        "reports_per_s": round(stored / seconds, 1) if seconds > 0 else None,
        "target_reports_per_s": 10_000,
        "publishers": args.publishers,
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
