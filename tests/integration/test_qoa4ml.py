"""A real QoA4ML client (PyPI ``qoa4ml==0.3.18``, in a venv of its own: its pins differ from
ours) registers with Harmonia as with ROHE's observation service and publishes its reports to
the real RabbitMQ (127.0.0.1:5672); the samples are stored with the right stage, service,
instance and metrics. Also: registration keys, and the reports over HTTP.

The venv is ``build/qoa4ml-venv`` (made here if missing); without it, or without RabbitMQ,
the tests skip — except in CI (``CI`` set), where they must run.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from harmonia.compat.qoa4ml.routes import QoA4MLOptions
from harmonia.server.app import create_app
from harmonia.server.background import BackgroundServer
from harmonia.store import Store, sqlite_url

ADMIN = "admin-secret"
KEY = "registration-key"
AMQP = "amqp://guest:guest@127.0.0.1:5672/%2F"
ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / "build" / "qoa4ml-venv"
PYTHON = VENV / "bin" / "python"

CLIENT = r"""
import json, sys, time
from qoa4ml.qoa_client import QoaClient
from qoa4ml.reports.ml_reports import MLReport
from qoa4ml.reports.rohe_reports import RoheReport
from qoa4ml.reports.resources_report_model import (
    ResourceReport, SystemMetadata, SystemReport)
from qoa4ml.lang.attributes import (
    DataQualityEnum, MLModelQualityEnum, ServiceQualityEnum)

args = json.loads(sys.argv[1])
kind = args["kind"]
client = QoaClient(
    report_cls=RoheReport if kind == "rohe" else MLReport,
    config_dict={"client": args["client"], "registration_url": args["url"]},
)
assert client.default_connector, "registration gave no connector"
connector = client.connector_list[client.default_connector]
print(json.dumps({"routing_key": connector.out_routing_key}))
for i in range(args["reports"]):
    client.timer()
    time.sleep(0.002)
    client.timer()
    client.observe_metric(ServiceQualityEnum.AVAILABILITY, 0.99, 0)
    client.observe_metric(DataQualityEnum.COMPLETENESS, 0.5, 1)
    client.observe_inference({"label": 1, "confidence": 0.8})
    client.observe_inference_metric(MLModelQualityEnum.ACCURACY, 0.75)
    client.report(submit=True)
    time.sleep(0.05)
system = SystemReport(
    metadata=SystemMetadata(node_name="edge-1", client_info=client.client_config),
    timestamp=time.time(),
    cpu=ResourceReport(usage={"percentage": 42.0}),
    mem=ResourceReport(usage={"rss": 1024.0}),
)
connector.send_report(system.model_dump_json())
time.sleep(0.5)
"""


def _unavailable() -> str | None:
    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=1).close()
    except OSError as error:
        return f"no RabbitMQ on 127.0.0.1:5672 ({error})"
    if not PYTHON.exists():
        made = subprocess.run(
            f"{sys.executable} -m venv {VENV} && {PYTHON} -m pip install -q qoa4ml==0.3.18",
            shell=True,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if made.returncode != 0:
            return f"cannot make {VENV} with qoa4ml==0.3.18: {made.stderr[-500:]}"
    check = subprocess.run([PYTHON, "-c", "import qoa4ml"], capture_output=True, text=True)
    if check.returncode != 0:
        return f"qoa4ml does not import in {VENV}: {check.stderr[-500:]}"
    return None


@pytest.fixture(scope="module")
def qoa4ml_python() -> Path:
    reason = _unavailable()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the QoA4ML tests: {reason}")
        pytest.skip(reason)
    return PYTHON


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Store]]:
    store = Store(sqlite_url(tmp_path))
    options = QoA4MLOptions(registration_key=KEY)
    server = BackgroundServer(
        store, ADMIN, data_dir=tmp_path, amqp_url=AMQP, qoa4ml_options=options
    )
    with server as url:
        yield url, store
    store.close()


@pytest.fixture
def rabbitmq() -> None:
    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=1).close()
    except OSError as error:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the QoA4ML tests: no RabbitMQ ({error})")
        pytest.skip(f"no RabbitMQ on 127.0.0.1:5672 ({error})")


def _run_client(python: Path, url: str, kind: str, client: dict[str, Any], reports: int) -> str:
    args = {"kind": kind, "client": client, "url": url, "reports": reports}
    done = subprocess.run(
        [python, "-c", CLIENT, json.dumps(args)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("{"))
    return str(json.loads(line)["routing_key"])


def _samples(store: Store, app_name: str, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 15
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        try:
            rows = list(store.telemetry(store.app(app_name)))
        except Exception:
            rows = []
        if len(rows) >= count:
            return rows
        time.sleep(0.1)
    return rows


def test_a_real_qoa4ml_client_registers_and_reports_through_rabbitmq(
    qoa4ml_python: Path, served: tuple[str, Store]
) -> None:
    url, store = served
    app = f"shop{uuid.uuid4().hex[:6]}"
    instance = str(uuid.uuid4())
    client = {
        "name": "detector",
        "user_id": "alice",
        "instance_id": instance,
        "stage_id": "detect",
        "functionality": "yolo",
        "application_name": app,
        "run_id": "r1",
        "role": "ml",
    }
    routing = _run_client(qoa4ml_python, f"{url}/registration?key={KEY}", "ml", client, 5)
    assert routing == f"{app}.alice.detect.{instance}.client1"

    rows = _samples(store, app, 6)
    assert len(rows) == 6, rows
    quality = [r for r in rows if "ml.accuracy" in r["metrics"]]
    assert len(quality) == 5
    for row in rows:
        assert (row["stage"], row["service"], row["instance"], row["model"]) == (
            "detect",
            "yolo",
            instance,
            "yolo",
        )
    first = quality[0]
    assert first["latency_ms"] is not None and first["latency_ms"] >= 1.0
    assert first["metrics"]["availability"] == pytest.approx(0.99)
    assert first["metrics"]["data.completeness"] == pytest.approx(0.5)
    assert first["metrics"]["prediction.confidence"] == pytest.approx(0.8)
    assert first["trace_id"]
    resources = [r for r in rows if "cpu.percentage" in r["metrics"]]
    assert len(resources) == 1 and resources[0]["metrics"]["mem.rss"] == 1024.0


def test_an_ensemble_client_reports_into_a_registered_pipeline(
    qoa4ml_python: Path, served: tuple[str, Store]
) -> None:
    url, store = served
    app = f"ens{uuid.uuid4().hex[:6]}"
    import httpx

    reply = httpx.post(
        f"{url}/api/v1/apps",
        json={
            "name": app,
            "owner": "team",
            "stages": [
                {"name": "ingest", "services": [{"name": "reader", "models": ["csv"]}]},
                {
                    "name": "classify",
                    "after": ["ingest"],
                    "services": [
                        {"name": "fast", "models": ["small"]},
                        {"name": "accurate", "models": ["large"]},
                    ],
                },
            ],
        },
        headers={"Authorization": f"Bearer {ADMIN}"},
    )
    assert reply.status_code == 201, reply.text
    instance = str(uuid.uuid4())
    client = {
        "name": "big",
        "user_id": "bob",
        "instance_id": instance,
        "stage_id": "classify",
        "functionality": "large",
        "application_name": app,
        "run_id": "r2",
    }
    _run_client(qoa4ml_python, f"{url}/registration?key={KEY}", "rohe", client, 3)
    rows = _samples(store, app, 4)
    assert len(rows) == 4
    assert {(r["stage"], r["service"], r["instance"], r["model"]) for r in rows} == {
        ("classify", "accurate", instance, "large")
    }
    assert sum("ml.accuracy" in r["metrics"] for r in rows) == 3


def test_registration_needs_the_key_and_a_known_stage(tmp_path: Path) -> None:
    store = Store(sqlite_url(tmp_path))
    body = {"application_name": "lab", "run_id": "r", "user_id": "u", "stage_id": "s"}
    with TestClient(
        create_app(store, ADMIN, qoa4ml_options=QoA4MLOptions(registration_key=KEY))
    ) as client:
        assert client.post("/registration", json=body).status_code == 401
        assert client.post("/registration?key=nope", json=body).status_code == 403
        # a server without an AMQP broker cannot hand out a connector
        assert client.post(f"/registration?key={KEY}", json=body).status_code == 503
    store.close()


def test_reports_over_http(tmp_path: Path) -> None:
    store = Store(sqlite_url(tmp_path))
    with TestClient(create_app(store, ADMIN)) as client:
        reply = client.post(
            "/api/v1/apps",
            json={
                "name": "web",
                "owner": "t",
                "stages": [{"name": "s", "services": [{"name": "m", "models": ["m"]}]}],
            },
            headers={"Authorization": f"Bearer {ADMIN}"},
        )
        token = reply.json()["token"]
        instance = str(uuid.uuid4())
        report = {
            "metadata": {
                "client_config": {"instance_id": instance, "stage_id": "s", "functionality": "m"},
                "timestamp": time.time(),
            },
            "service": {
                "s": {
                    "name": "s",
                    "metrics": {
                        "response_time": {
                            instance: {
                                "metric_name": "response_time",
                                "records": [{"startTime": 1.0, "responseTime": 0.02}],
                            }
                        }
                    },
                }
            },
            "ml_inference": {},
        }
        path = "/api/v1/apps/web/qoa4ml/reports"
        assert client.post(path, json=report).status_code == 401
        reply = client.post(
            path, json=[report, report], headers={"Authorization": f"Bearer {token}"}
        )
        assert reply.status_code == 200, reply.text
        assert reply.json()["accepted"] == 2
        bad = client.post(path, json={"x": 1}, headers={"Authorization": f"Bearer {token}"})
        assert bad.status_code == 422
        rows = list(store.telemetry(store.app("web")))
        assert [r["latency_ms"] for r in rows] == [pytest.approx(20.0)] * 2
        assert rows[0]["instance"] == instance
    store.close()


def _report(instance: str, n: int) -> bytes:
    """An MLReport as QoA4ML writes it, its inference id ``inf-<n>``."""
    report = {
        "metadata": {
            "client_config": {"instance_id": instance, "stage_id": "detect"},
            "timestamp": time.time(),
        },
        "service": {
            "detect": {
                "metrics": {
                    "response_time": {instance: {"records": [{"responseTime": 0.01}]}},
                    "availability": {instance: {"records": [0.99]}},
                }
            }
        },
        "ml_inference": {instance: {"instance_id": instance, "inference_id": f"inf-{n}"}},
    }
    return json.dumps(report).encode()


def test_a_burst_is_stored_whole_and_only_the_bad_reports_are_dropped(
    rabbitmq: None, tmp_path: Path
) -> None:
    """Reports published at once with QoA4ML's 1 s expiry all reach the store (none twice);
    the unreadable ones are counted, not stored, and cost the others nothing."""
    import pika

    store = Store(sqlite_url(tmp_path))
    options = QoA4MLOptions(registration_key=KEY)
    background = BackgroundServer(
        store, ADMIN, data_dir=tmp_path, amqp_url=AMQP, qoa4ml_options=options
    )
    app, count = f"burst{uuid.uuid4().hex[:6]}", 3000
    with background as url:
        import httpx

        registration = {"application_name": app, "run_id": "r", "user_id": "u"}
        registration |= {"stage_id": "detect", "functionality": "yolo"}
        httpx.post(f"{url}/registration?key={KEY}", json=registration).raise_for_status()
        connection = pika.BlockingConnection(pika.URLParameters(AMQP))
        channel = connection.channel()
        expiring = pika.BasicProperties(expiration="1000")
        bad = [b"{not json", b'{"service": {"detect": [1]}}', b'{"hello": 1}']
        bodies = [_report(f"i-{n % 5}", n) for n in range(count)]
        for body in bodies[:1000] + bad + bodies[1000:]:
            channel.basic_publish(f"{app}_exchange", f"{app}.u.detect.x.client1", body, expiring)
        connection.close()
        rows = _samples(store, app, count)
        served: Any = background.server.config.app
        bridge = served.state.qoa4ml.bridge
        deadline = time.monotonic() + 10
        while bridge.dropped < len(bad) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (bridge.dropped, bridge.failed) == (len(bad), 0)
    assert len(rows) == count
    assert {r["trace_id"] for r in rows} == {f"inf-{n}" for n in range(count)}
    assert {r["instance"] for r in rows} == {f"i-{n}" for n in range(5)}
    store.close()
