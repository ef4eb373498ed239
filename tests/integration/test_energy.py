"""Energy per stage through the API: a node's own counter, reported by an instance on it,
apportioned by CPU time to the services on the node (another application's included), carbon
from the node's label, its region or the default, and the breakdown as CSV."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from databases import BACKENDS, database
from fastapi.testclient import TestClient
from test_pipelines import register, traced
from test_server_api import ADMIN, auth

from harmonia.core.pipeline import JOULES_PER_KWH, NODE_BY_CPU_TIME, PROBE, CarbonIntensity
from harmonia.server.app import create_app
from harmonia.store import Store

URL = "/api/v1/apps"
#: where each service of DETECT runs, and the node's labels
PLACED = {
    "frames": ("camera-1", {"region": "se"}),
    "fast": ("edge-1", {}),
    "accurate": ("edge-1", {}),
    "vote": ("hydro-1", {"carbon_g_per_kwh": "20"}),
}
CPU_S = {"fast": 0.1, "accurate": 0.3}


@pytest.fixture(params=BACKENDS)
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestClient]:
    with database(request.param, tmp_path) as url:
        store = Store(url)
        carbon = CarbonIntensity(400.0, {"se": 25.0})
        with TestClient(create_app(store, ADMIN, carbon=carbon)) as test_client:
            yield test_client
        store.close()


def send(
    client: TestClient, app: str, token: str, service: str, model: str, **extra: float
) -> None:
    """Ten traced samples of ``service`` (ts 1000-1009, 0.5 J each by the probe)."""
    batch = traced(service, model, 10, 0.9)
    for sample in batch:
        sample["metrics"] = dict(extra)
    reply = client.post(
        f"{URL}/{app}/telemetry",
        json={"instance": f"{service}-1", "samples": batch},
        headers=auth(token),
    )
    assert reply.status_code == 200, reply.text


def test_a_nodes_counter_is_apportioned_by_cpu_time_and_carbon_follows_the_node(
    client: TestClient,
) -> None:
    token = register(client)["token"]
    for service, (node, labels) in PLACED.items():
        body = {"name": f"{service}-1", "node": node, "labels": labels}
        reply = client.post(
            f"{URL}/detect/services/{service}/instances", json=body, headers=auth(token)
        )
        assert reply.status_code == 201, reply.text
    models = {"frames": "raw", "fast": "linear", "accurate": "lstm", "vote": "m"}
    for service, model in models.items():
        cpu = {"cpu_s": CPU_S[service]} if service in CPU_S else {}
        send(client, "detect", token, service, model, **cpu)
    # another application shares edge-1: its samples take their part of the counter
    other = client.post(
        URL, json={"name": "other", "owner": "o", "models": ["x"]}, headers=auth(ADMIN)
    ).json()
    client.post(
        f"{URL}/other/services/default/instances",
        json={"name": "default-1", "node": "edge-1"},
        headers=auth(other["token"]),
    )
    send(client, "other", other["token"], "default", "x", cpu_s=0.4)

    # edge-1's counter, read end to end by one of the instances on it: 80 J in all
    energy = f"{URL}/detect/nodes/edge-1/energy"
    for start, end in ((999.0, 1005.0), (1005.0, 1010.0)):
        reading = {"start": start, "end": end, "joules": 40.0}
        reply = client.post(energy, json=reading, headers=auth(token))
        assert reply.status_code == 201, reply.text
    assert reply.json() == {"node": "edge-1", "start": 1005.0, "end": 1010.0, "joules": 40.0}

    query = "start=0&end=5000"
    by_service = client.get(f"{URL}/detect/energy?by=service&{query}").json()
    groups, methods = by_service["groups"], by_service["methods"]
    # per sample, fast 0.1 + accurate 0.3 of the 0.8 CPU s on edge-1: half the node's 80 J
    assert groups["fast"]["total_j"] + groups["accurate"]["total_j"] == pytest.approx(40.0)
    assert groups["accurate"]["total_j"] == pytest.approx(3 * groups["fast"]["total_j"])
    assert groups["fast"]["node_j"] == groups["fast"]["total_j"]
    assert methods["fast"] == [NODE_BY_CPU_TIME] and methods["frames"] == [PROBE]
    assert groups["frames"]["total_j"] == pytest.approx(5.0)  # its probe's 10 x 0.5 J
    assert by_service["nodes"]["edge-1"] == {
        "carbon_g_per_kwh": 400.0,
        "carbon_source": "default",
        "counter_j": pytest.approx(80.0),
        "apportioned_j": pytest.approx(40.0),
    }
    assert by_service["nodes"]["camera-1"]["carbon_source"] == "region se"
    assert by_service["nodes"]["hydro-1"]["counter_j"] is None
    assert groups["frames"]["g_co2e"] == pytest.approx(5.0 / JOULES_PER_KWH * 25.0)
    assert groups["vote"]["g_co2e"] == pytest.approx(5.0 / JOULES_PER_KWH * 20.0)
    assert groups["fast"]["g_co2e"] == pytest.approx(
        groups["fast"]["total_j"] / JOULES_PER_KWH * 400
    )

    # stages add up to the pipeline, per request and in all
    by_stage = client.get(f"{URL}/detect/energy?by=stage&{query}").json()
    stages = by_stage["groups"]
    assert by_stage["total_j"] == pytest.approx(5.0 + 40.0 + 5.0)
    assert sum(g["total_j"] for g in stages.values()) == pytest.approx(by_stage["total_j"])
    assert sum(g["j_per_request"] for g in stages.values()) == pytest.approx(50.0 / 10)
    assert by_stage["methods"]["classify"] == [NODE_BY_CPU_TIME]
    # a request may set the default intensity; nodes with a label or a region keep theirs
    cheap = client.get(f"{URL}/detect/energy?by=stage&{query}&carbon_g_per_kwh=0").json()
    assert cheap["groups"]["classify"]["g_co2e"] == 0.0
    assert cheap["groups"]["camera"]["g_co2e"] == pytest.approx(
        by_stage["groups"]["camera"]["g_co2e"]
    )

    # the same breakdown as CSV, one row per stage
    exported = client.get(f"{URL}/detect/energy.csv?by=stage&{query}")
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [row["stage"] for row in rows] == list(stages)
    classify = next(row for row in rows if row["stage"] == "classify")
    assert float(classify["total_j"]) == pytest.approx(stages["classify"]["total_j"])
    assert classify["method"] == NODE_BY_CPU_TIME


def test_node_readings_are_checked(client: TestClient) -> None:
    token = register(client)["token"]
    client.post(
        f"{URL}/detect/services/fast/instances",
        json={"name": "fast-1", "node": "edge-1"},
        headers=auth(token),
    )
    energy = f"{URL}/detect/nodes/edge-1/energy"
    assert client.post(energy, json={"start": 0, "end": 10, "joules": 1}).status_code == 401
    ok = client.post(energy, json={"start": 0, "end": 10, "joules": 1}, headers=auth(token))
    assert ok.status_code == 201, ok.text
    # two reporters on one node would count it twice
    overlap = client.post(energy, json={"start": 5, "end": 15, "joules": 1}, headers=auth(token))
    assert overlap.status_code == 409 and "overlaps" in overlap.json()["detail"]
    # only for a node the app runs on
    elsewhere = client.post(
        f"{URL}/detect/nodes/gpu-9/energy",
        json={"start": 20, "end": 30, "joules": 1},
        headers=auth(token),
    )
    assert elsewhere.status_code == 404 and "gpu-9" in elsewhere.json()["detail"]
    for body, field in (
        ({"start": 30, "end": 20, "joules": 1}, ""),
        ({"start": 20, "end": 30, "joules": -1}, "joules"),
        ({"start": 20, "end": time.time() + 86400, "joules": 1}, "end"),
    ):
        refused = client.post(energy, json=body, headers=auth(token))
        assert refused.status_code == 422, body
        assert refused.json()["detail"][0]["field"] == field
