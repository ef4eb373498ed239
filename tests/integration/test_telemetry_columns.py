"""Columnar telemetry batches (``{"columns": {...}}``): stored, windowed and decided on
exactly as the same samples sent as rows; errors name the column and the sample's index;
the sdk sends columns, and rows to a server that refuses them."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient

from harmonia.sdk import HTTPTransport
from harmonia.sdk._wire import to_columns
from harmonia.server.app import create_app
from harmonia.store import Store, sqlite_url

ADMIN = "admin-secret"
POLICY = """
policy: traffic-switch
system: traffic
models: [linear, svm, lstm]
initial_model: lstm
window: 50 samples
strategy: switch
boundaries:
  - when: quality < 0.8
    then: switch_model
"""
URL = "/api/v1/apps/{}/telemetry"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    store = Store(sqlite_url(tmp_path))
    with TestClient(create_app(store, ADMIN)) as test_client:
        yield test_client
    store.close()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def register(client: TestClient, name: str) -> str:
    reply = client.post(
        "/api/v1/apps",
        json={"name": name, "owner": "team", "models": ["linear", "svm", "lstm"]},
        headers=auth(ADMIN),
    )
    assert reply.status_code == 201, reply.text
    token = str(reply.json()["token"])
    policy = POLICY.replace("system: traffic", f"system: {name}")
    put = client.put(f"/api/v1/apps/{name}/policy", content=policy, headers=auth(token))
    assert put.is_success, put.text
    return token


def samples(n: int, start: int, seed: int) -> list[dict[str, Any]]:
    """Varied samples: bad stretches (actions), a switch of model, missing values, metrics
    and traces on some, fields some samples leave out."""
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    for i in range(n):
        target = rng.gauss(100, 20)
        bad = (start + i) // 100 % 2 == 1
        sample: dict[str, Any] = {
            "model": "lstm" if i < n * 2 // 3 else "svm",
            "model_version": 1 if i % 5 else None,
            "ts": float(start + i),
            "latency_ms": rng.uniform(1, 3),
            "energy_j": None if i % 7 == 0 else 0.002,
            "energy_source": "estimate",
            "prediction": target + rng.gauss(0, 40 if bad else 2),
            "target": target,
            "drift_value": target,
        }
        if i % 3 == 0:
            sample["metrics"] = {"confidence": rng.random()}
        if i % 4 == 0:
            sample["trace_id"] = f"t{i}"
        if i % 6 == 0:
            sample["service"] = "forecast"
        out.append(sample)
    return out


def stored(client: TestClient, name: str, token: str) -> tuple[Any, ...]:
    csv = client.get(f"/api/v1/apps/{name}/telemetry.csv", headers=auth(token))
    windows = client.get(f"/api/v1/apps/{name}/windows", headers=auth(token)).json()
    actions = client.get(f"/api/v1/apps/{name}/actions", headers=auth(token)).json()
    for window in windows:
        window.pop("id", None)
    keep = ("kind", "model", "version", "trigger", "values", "status")  # not ts: the clock
    return csv.text, windows, [{k: a.get(k) for k in keep} for a in actions]


def test_columns_store_and_decide_as_rows(client: TestClient) -> None:
    rows_token, columns_token = register(client, "rows"), register(client, "columns")
    replies = []
    for start, n in ((0, 120), (120, 1), (121, 279)):
        batch = samples(n, start, seed=start)
        by_rows = client.post(
            URL.format("rows"), json={"instance": "i-1", "samples": batch}, headers=auth(rows_token)
        )
        by_columns = client.post(
            URL.format("columns"),
            json={"instance": "i-1", "columns": to_columns(batch)},
            headers=auth(columns_token),
        )
        assert by_rows.status_code == by_columns.status_code == 200, by_columns.text
        replies.append((by_rows.json(), by_columns.json()))
    for by_rows, by_columns in replies:
        assert by_columns["accepted"] == by_rows["accepted"]
        assert [a["kind"] for a in by_columns["actions"]] == [a["kind"] for a in by_rows["actions"]]
    rows_csv, rows_windows, rows_actions = stored(client, "rows", rows_token)
    columns_csv, columns_windows, columns_actions = stored(client, "columns", columns_token)
    assert rows_csv.count("\n") == 401  # the header and every sample
    assert columns_csv.replace("columns", "rows") == rows_csv.replace("columns", "rows")
    assert columns_windows == rows_windows and len(rows_windows) == 8
    assert columns_actions == rows_actions and rows_actions


def test_column_errors_name_the_column_and_the_sample(client: TestClient) -> None:
    token = register(client, "traffic")
    columns = to_columns(samples(20, 0, seed=1))
    columns["energy_j"][7] = -1.0
    columns["surprise"] = [1] * 20
    reply = client.post(URL.format("traffic"), json={"columns": columns}, headers=auth(token))
    assert reply.status_code == 422
    assert {e["field"] for e in reply.json()["detail"]} == {
        "columns.energy_j[7]",
        "columns.surprise",
    }
    reasons = {e["field"]: e["reason"] for e in reply.json()["detail"]}
    assert reasons["columns.energy_j[7]"] == "Input should be greater than or equal to 0"

    uneven = to_columns(samples(20, 0, seed=1))
    uneven["target"] = uneven["target"][:-1]
    reply = client.post(URL.format("traffic"), json={"columns": uneven}, headers=auth(token))
    assert reply.status_code == 422
    assert reply.json()["detail"] == [
        {"field": "columns.target", "reason": "has 19 values; columns.ts has 20"}
    ]

    ahead = to_columns(samples(5, 0, seed=1))
    ahead["ts"][3] = 4e10
    reply = client.post(URL.format("traffic"), json={"columns": ahead}, headers=auth(token))
    assert [e["field"] for e in reply.json()["detail"]] == ["columns.ts[3]"]

    staged = to_columns(samples(5, 0, seed=1))
    staged["stage"] = [None, "main", "elsewhere", None, None]
    reply = client.post(URL.format("traffic"), json={"columns": staged}, headers=auth(token))
    assert reply.status_code == 422
    assert [e["field"] for e in reply.json()["detail"]] == ["columns.stage[2]"]

    missing = {"model": ["lstm"] * 3}
    reply = client.post(URL.format("traffic"), json={"columns": missing}, headers=auth(token))
    assert [e["field"] for e in reply.json()["detail"]] == ["columns.ts"]
    server = client.app.state.server  # type: ignore[attr-defined]
    assert server.store.count_telemetry(server.app("traffic")) == 0  # nothing stored


def test_a_row_batch_that_says_columns_is_still_rows(client: TestClient) -> None:
    token = register(client, "traffic")
    batch = samples(3, 0, seed=2)
    batch[1]["metrics"] = {"columns": 1.0}
    reply = client.post(URL.format("traffic"), json={"samples": batch}, headers=auth(token))
    assert reply.json()["accepted"] == 3
    batch[2]["energy_j"] = -1.0
    reply = client.post(URL.format("traffic"), json={"samples": batch}, headers=auth(token))
    assert [e["field"] for e in reply.json()["detail"]] == ["samples[2].energy_j"]


def test_the_sdk_sends_columns(client: TestClient) -> None:
    token = register(client, "traffic")
    transport = HTTPTransport("http://testserver", token, client=client)
    transport.send("traffic", "i-1", samples(60, 0, seed=3), idempotency_key="k-1")
    transport.send("traffic", "i-1", samples(60, 0, seed=3), idempotency_key="k-1")  # a retry
    assert transport.columns
    server = client.app.state.server  # type: ignore[attr-defined]
    assert server.store.count_telemetry(server.app("traffic")) == 60


def test_the_sdk_sends_rows_to_a_server_without_columns() -> None:
    """A server older than the form refuses ``columns`` as an extra input: the transport
    sends the batch again as rows, under the same key, and rows from then on."""
    bodies: list[dict[str, Any]] = []
    keys: list[str] = []

    def old_server(request: httpx.Request) -> httpx.Response:
        body = orjson.loads(request.content)
        bodies.append(body)
        keys.append(request.headers["Idempotency-Key"])
        if "columns" in body:
            detail = [
                {"field": "samples", "reason": "Field required"},
                {"field": "columns", "reason": "Extra inputs are not permitted"},
            ]
            return httpx.Response(422, json={"detail": detail})
        return httpx.Response(200, json={"accepted": len(body["samples"]), "actions": []})

    with httpx.Client(transport=httpx.MockTransport(old_server)) as http:
        transport = HTTPTransport("http://old", "t", client=http)
        batch = samples(3, 0, seed=4)
        assert transport.send("traffic", "i-1", batch, idempotency_key="k-1") == []
        assert not transport.columns
        transport.send("traffic", "i-1", batch, idempotency_key="k-2")
    assert ["columns" in b for b in bodies] == [True, False, False]
    assert keys == ["k-1", "k-1", "k-2"]
    assert bodies[1]["samples"] == batch
