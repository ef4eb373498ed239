"""Probes reporting through a real MQTT broker (Mosquitto on 127.0.0.1:1883) to the server's
bridge: the same answers, actions and errors as over HTTP."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from test_server_api import ADMIN, POLICY, auth, register, samples

from harmonia.sdk import MQTTTransport, Probe, TransportError
from harmonia.server.app import create_app
from harmonia.store import Store, sqlite_url

pytest.importorskip("paho.mqtt", reason="paho-mqtt is not installed (pip install harmonia[mqtt])")

BROKER = ("127.0.0.1", 1883)


def _broker_down() -> str | None:
    try:
        socket.create_connection(BROKER, timeout=1).close()
    except OSError as error:
        return f"no MQTT broker on {BROKER[0]}:{BROKER[1]} ({error})"
    return None


@pytest.fixture
def broker() -> str:
    """A broker URL with a topic prefix of this test's own, so that nothing else answers."""
    reason = _broker_down()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the MQTT tests: {reason}")
        pytest.skip(reason)
    return f"mqtt://{BROKER[0]}:{BROKER[1]}/harmonia-test-{secrets.token_hex(4)}"


@pytest.fixture
def client(tmp_path: Path, broker: str) -> Iterator[TestClient]:
    store = Store(sqlite_url(tmp_path))
    with TestClient(create_app(store, ADMIN, data_dir=tmp_path, mqtt_url=broker)) as test_client:
        yield test_client
    store.close()


def test_telemetry_actions_results_and_versions_over_mqtt(client: TestClient, broker: str) -> None:
    token = register(client)
    client.put("/api/v1/apps/traffic/policy", content=POLICY, headers=auth(token))
    with MQTTTransport(broker, token) as transport:
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


def test_rejections_over_mqtt_are_not_retried_and_name_the_field(
    client: TestClient, broker: str
) -> None:
    token = register(client)
    bad = samples("lstm", 3, 0.9)
    bad[1]["energy_j"] = -1.0
    with MQTTTransport(broker, token) as transport:
        with pytest.raises(TransportError) as rejected:
            transport.send("traffic", "i-1", bad)
        assert not rejected.value.retryable and rejected.value.status == 422
        assert "samples[1].energy_j" in rejected.value.message
    with MQTTTransport(broker, "not-the-token") as stranger:
        with pytest.raises(TransportError) as refused:
            stranger.send("traffic", "i-1", samples("lstm", 3, 0.9))
        assert refused.value.status == 403 and not refused.value.retryable
    csv = client.get("/api/v1/apps/traffic/telemetry.csv", headers=auth(token)).text
    assert csv.count("\n") == 1  # the header only: nothing of either batch was stored


def test_no_bridge_means_a_retryable_timeout(broker: str) -> None:
    with (
        MQTTTransport(broker, "token", timeout=0.3) as transport,
        pytest.raises(TransportError) as silent,
    ):
        transport.send("traffic", "i-1", samples("lstm", 1, 0.9))
    assert silent.value.retryable and "no reply" in silent.value.message


def test_a_probe_reports_through_the_broker(client: TestClient, broker: str) -> None:
    token = register(client)
    with Probe("traffic", MQTTTransport(broker, token), batch_size=40) as probe:
        for i in range(120):
            probe.record("lstm", version=1, prediction=float(i), target=float(i), ts=float(i))
        assert probe.flush(timeout=10)
    assert probe.stats.sent == 120 and probe.stats.rejected == 0
    csv = client.get("/api/v1/apps/traffic/telemetry.csv", headers=auth(token)).text
    assert csv.count("\n") == 121
