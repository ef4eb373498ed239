"""Probes reporting through real brokers to the server's bridges — MQTT (Mosquitto on
127.0.0.1:1883) and AMQP (RabbitMQ on 127.0.0.1:5672): the same answers, actions and errors
as over HTTP. Every test runs once per broker."""

from __future__ import annotations

import importlib
import os
import secrets
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from test_server_api import ADMIN, POLICY, auth, register, samples

from harmonia.sdk import AMQPTransport, MQTTTransport, Probe, Transport, TransportError
from harmonia.sdk._amqp import broker_queue
from harmonia.server.app import create_app
from harmonia.store import Store, sqlite_url

#: kind: (client package, port, URL with a name of this test run's own, so nothing else answers)
BROKERS = {
    "mqtt": ("paho.mqtt", 1883, "mqtt://127.0.0.1:1883/harmonia-test-{tag}"),
    "amqp": ("pika", 5672, "amqp://guest:guest@127.0.0.1:5672/%2F?queue=harmonia-test-{tag}"),
}
TRANSPORTS: dict[str, Callable[..., Transport]] = {"mqtt": MQTTTransport, "amqp": AMQPTransport}


def _unavailable(kind: str) -> str | None:
    package, port, _ = BROKERS[kind]
    try:
        importlib.import_module(package)
    except ImportError:
        return f"{package} is not installed (pip install harmonia[{kind}])"
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError as error:
        return f"no {kind.upper()} broker on 127.0.0.1:{port} ({error})"
    return None


@pytest.fixture(params=sorted(BROKERS))
def broker(request: pytest.FixtureRequest) -> Iterator[str]:
    reason = _unavailable(request.param)
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the broker tests: {reason}")
        pytest.skip(reason)
    url = BROKERS[request.param][2].format(tag=secrets.token_hex(4))
    yield url
    if request.param == "amqp":  # the bridge's request queue is durable: remove this run's
        import pika

        address, queue = broker_queue(url)
        with pika.BlockingConnection(pika.URLParameters(address)) as connection:
            connection.channel().queue_delete(queue)


def connect(broker: str, token: str, **options: Any) -> Any:
    """The transport for the broker's kind (the URL's scheme)."""
    return TRANSPORTS[broker.split(":")[0]](broker, token, **options)


@pytest.fixture
def client(tmp_path: Path, broker: str) -> Iterator[TestClient]:
    store = Store(sqlite_url(tmp_path))
    urls = {f"{broker.split(':')[0]}_url": broker}
    with TestClient(create_app(store, ADMIN, data_dir=tmp_path, **urls)) as test_client:
        yield test_client
    store.close()


def test_telemetry_actions_results_and_versions_through_a_broker(
    client: TestClient, broker: str
) -> None:
    token = register(client)
    client.put("/api/v1/apps/traffic/policy", content=POLICY, headers=auth(token))
    with connect(broker, token) as transport:
        assert transport.send("traffic", "i-1", samples("lstm", 50, 0.95)) == []
        [action] = transport.send("traffic", "i-1", samples("lstm", 50, 0.3, start=50))
        assert action.kind == "switch_model" and action.model == "linear"
        transport.report("traffic", action.id, "applied", "now serving linear")
        transport.describe_version(
            "traffic", "svm", 2, {"fingerprint": [1.0, 2.0], "details": {"r2": 0.9}}
        )
    [stored] = client.get("/api/v1/apps/traffic/actions").json()
    assert stored["status"] == "applied" and stored["detail"] == "now serving linear"
    models = {m["model"]: m for m in client.get("/api/v1/apps/traffic/models").json()}
    assert models["svm"]["versions"][0]["details"] == {"r2": 0.9}
    windows = client.get("/api/v1/apps/traffic/windows").json()
    assert [w["count"] for w in windows] == [50, 50]


def test_rejections_are_not_retried_and_name_the_field(client: TestClient, broker: str) -> None:
    token = register(client)
    bad = samples("lstm", 3, 0.9)
    bad[1]["energy_j"] = -1.0
    with connect(broker, token) as transport:
        with pytest.raises(TransportError) as rejected:
            transport.send("traffic", "i-1", bad)
        assert not rejected.value.retryable and rejected.value.status == 422
        assert "columns.energy_j[1]" in rejected.value.message  # sent as columns
    with connect(broker, "not-the-token") as stranger:
        with pytest.raises(TransportError) as refused:
            stranger.send("traffic", "i-1", samples("lstm", 3, 0.9))
        assert refused.value.status == 403 and not refused.value.retryable
    csv = client.get("/api/v1/apps/traffic/telemetry.csv", headers=auth(token)).text
    assert csv.count("\n") == 1  # the header only: nothing of either batch was stored


def test_no_bridge_means_a_retryable_timeout(broker: str) -> None:
    with (
        connect(broker, "token", timeout=0.3) as transport,
        pytest.raises(TransportError) as silent,
    ):
        transport.send("traffic", "i-1", samples("lstm", 1, 0.9))
    assert silent.value.retryable and "no reply" in silent.value.message


def test_a_probe_reports_through_the_broker(client: TestClient, broker: str) -> None:
    token = register(client)
    with Probe("traffic", connect(broker, token), batch_size=40) as probe:
        for i in range(120):
            probe.record("lstm", version=1, prediction=float(i), target=float(i), ts=float(i))
        assert probe.flush(timeout=10)
    assert probe.stats.sent == 120 and probe.stats.rejected == 0
    csv = client.get("/api/v1/apps/traffic/telemetry.csv", headers=auth(token)).text
    assert csv.count("\n") == 121
