"""Observers beside ingestion: configured per application over the API, fed by stored
batches on their own thread, their runs stored and served — flagging injected anomalies in a
service's latency, while a bad configuration is refused naming its field."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from test_pipelines import register
from test_server_api import ADMIN, auth

from harmonia.server.app import create_app
from harmonia.store import Store, sqlite_url

OBSERVERS = """
observers:
  - name: fast_outliers
    observer: isolation_forest
    params: {contamination: 0.02}
    metrics: latency_ms
    service: fast
    window: {size: 500}
    every: {samples: 500}
  - name: fast_latency
    observer: summary
    service: fast
    window: {size: 500}
    every: {samples: 500}
"""


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    store = Store(sqlite_url(tmp_path))
    with TestClient(create_app(store, ADMIN, contract_check_s=0)) as test_client:
        yield test_client
    store.close()


def test_observers_flag_injected_latency_anomalies_off_the_ingestion_path(
    client: TestClient,
) -> None:
    token = register(client)["token"]
    assert client.get("/api/v1/apps/detect/observers").status_code == 404
    put = client.put("/api/v1/apps/detect/observers", content=OBSERVERS, headers=auth(token))
    assert put.status_code == 201, put.text

    rng = random.Random(3)
    start = time.time() - 600
    spikes = set(rng.sample(range(500), 10))  # 2 %
    samples = []
    for i in range(500):
        latency = rng.gauss(20.0, 2.0) * (rng.uniform(4, 8) if i in spikes else 1.0)
        samples.append(
            {"service": "fast", "model": "linear", "ts": start + i, "latency_ms": latency}
        )
    for first in range(0, 500, 100):  # five batches: the observers run once, on the last
        reply = client.post(
            "/api/v1/apps/detect/telemetry",
            json={"instance": "fast-1", "samples": samples[first : first + 100]},
            headers=auth(token),
        )
        assert reply.status_code == 200, reply.text

    deadline = time.monotonic() + 30
    runs: dict[str, dict] = {}
    while time.monotonic() < deadline and len(runs) < 2:
        runs = {r["name"]: r for r in client.get("/api/v1/apps/detect/observations").json()}
        time.sleep(0.1)
    assert set(runs) == {"fast_outliers", "fast_latency"}
    outliers = runs["fast_outliers"]
    assert outliers["error"] is None and outliers["size"] == 500
    flagged = {round(ts - start) for ts in outliers["flagged_ts"]}
    precision = len(flagged & spikes) / len(flagged)
    recall = len(flagged & spikes) / len(spikes)
    print(f"isolation_forest over the API: precision {precision:.2f}, recall {recall:.2f}")
    assert precision >= 0.7 and recall >= 0.7
    assert runs["fast_latency"]["values"]["p50"] == pytest.approx(20.0, abs=1.0)

    status = client.get("/api/v1/apps/detect/observers").json()
    assert status["stats"]["fast_outliers"]["runs"] == 1 and status["skipped_batches"] == 0

    # a contract reads the observers' latest results
    contract = (
        "slos:\n  - name: few-outliers\n    condition: observer.fast_outliers.anomalies <= 5\n"
    )
    assert (
        client.put(
            "/api/v1/apps/detect/contract", content=contract, headers=auth(token)
        ).status_code
        == 201
    )
    [checked] = client.post("/api/v1/apps/detect/contract/check", headers=auth(token)).json()
    assert checked["status"] == "violated"
    assert checked["checks"][0]["value"] == len(outliers["flagged_ts"])


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("observers:\n  - name: x\n    observer: nope\n", "observers"),
        ("observers:\n  - name: x\n    observer: summary\n    window: {}\n", "observers[0].window"),
        ("observers:\n  - name: x\n    observer: lof\n    params: {wrong: 1}\n", "observers"),
    ],
)
def test_a_bad_observer_configuration_is_refused_naming_the_field(
    client: TestClient, text: str, field: str
) -> None:
    token = register(client)["token"]
    reply = client.put("/api/v1/apps/detect/observers", content=text, headers=auth(token))
    assert reply.status_code == 422, reply.text
    assert reply.json()["detail"][0]["field"] == field
    assert client.get("/api/v1/apps/detect/observers").status_code == 404


def test_a_policy_switches_on_an_observers_stored_result(client: TestClient) -> None:
    token = register(client)["token"]
    policy = """
policy: detect-fast
system: detect
models: [linear, svm]
initial_model: linear
window: 100 samples
strategy: switch
boundaries:
  - when: observer.fast_latency.p99 > 100
    then: switch_model
"""
    reply = client.put(
        "/api/v1/apps/detect/services/fast/policy", content=policy, headers=auth(token)
    )
    assert reply.status_code == 201, reply.text
    assert (
        client.put(
            "/api/v1/apps/detect/observers", content=OBSERVERS, headers=auth(token)
        ).status_code
        == 201
    )

    def send(first: int, latency: float) -> dict:
        samples = [
            {"service": "fast", "model": "linear", "ts": 1000.0 + i, "latency_ms": latency}
            for i in range(first, first + 100)
        ]
        reply = client.post(
            "/api/v1/apps/detect/telemetry",
            json={"instance": "fast-1", "samples": samples},
            headers=auth(token),
        )
        assert reply.status_code == 200, reply.text
        return dict(reply.json())

    for first in range(0, 500, 100):  # slow: the summary observer runs on the 500th sample
        assert send(first, 250.0)["actions"] == []  # no result yet when these windows closed
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        names = {r["name"] for r in client.get("/api/v1/apps/detect/observations").json()}
        if "fast_latency" in names:
            break
        time.sleep(0.05)
    [action] = send(500, 250.0)["actions"]
    assert action["kind"] == "switch_model" and action["model"] == "svm"
    assert action["trigger"] == "observer.fast_latency.p99 > 100"
