"""The server's API through HTTP requests against the ASGI app (SQLite store)."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from harmonia.server.app import MAX_BODY_BYTES, create_app
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


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    store = Store(sqlite_url(tmp_path))
    with TestClient(create_app(store, ADMIN)) as test_client:
        yield test_client
    store.close()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def register(client: TestClient) -> str:
    reply = client.post(
        "/api/v1/apps",
        json={"name": "traffic", "owner": "team", "models": ["linear", "svm", "lstm"]},
        headers=auth(ADMIN),
    )
    assert reply.status_code == 201, reply.text
    return str(reply.json()["token"])


def samples(model: str, n: int, r2: float, start: int = 0, **extra: Any) -> list[dict[str, Any]]:
    rng = random.Random(start)
    out = []
    for i in range(n):
        target = rng.gauss(100, 20)
        noise = 20 * max(0.0, 1 - r2) ** 0.5
        out.append(
            {
                "service": "forecast",
                "model": model,
                "model_version": 1,
                "ts": float(start + i),
                "latency_ms": 1.0,
                "energy_j": 0.001,
                "energy_source": "estimate",
                "prediction": target + rng.gauss(0, noise),
                "target": target,
                "drift_value": target,
                "metrics": {},
                **extra,
            }
        )
    return out


def test_register_needs_the_admin_token(client: TestClient) -> None:
    body = {"name": "traffic", "owner": "team", "models": ["linear"]}
    assert client.post("/api/v1/apps", json=body).status_code == 401
    assert client.post("/api/v1/apps", json=body, headers=auth("nope")).status_code == 401
    reply = client.post("/api/v1/apps", json=body, headers=auth(ADMIN))
    assert reply.status_code == 201 and reply.json()["token"]
    again = client.post("/api/v1/apps", json=body, headers=auth(ADMIN))
    assert again.status_code == 409 and "already registered" in again.json()["detail"]


def test_bad_registration_names_the_field(client: TestClient) -> None:
    reply = client.post(
        "/api/v1/apps", json={"name": "x", "owner": "o", "models": []}, headers=auth(ADMIN)
    )
    assert reply.status_code == 422
    assert {
        "field": "models",
        "reason": "List should have at least 1 item after validation, not 0",
    } in reply.json()["detail"]
    reply = client.post(
        "/api/v1/apps",
        json={"name": "Bad Name", "owner": "o", "models": ["m"]},
        headers=auth(ADMIN),
    )
    assert reply.status_code == 422 and reply.json()["detail"][0]["field"] == "name"


def test_policy_is_validated_versioned_and_scoped(client: TestClient) -> None:
    token = register(client)
    bad = client.put(
        "/api/v1/apps/traffic/policy",
        content="policy: p\nsystem: traffic\nmodels: []\n",
        headers=auth(token),
    )
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "models"
    wrong = client.put(
        "/api/v1/apps/traffic/policy", content=POLICY.replace("lstm", "gpt"), headers=auth(token)
    )
    assert wrong.status_code == 422 and "cannot serve gpt" in wrong.json()["detail"][0]["reason"]
    assert (
        client.put("/api/v1/apps/traffic/policy", content=POLICY, headers=auth(token)).json()[
            "version"
        ]
        == 1
    )
    assert (
        client.put("/api/v1/apps/traffic/policy", content=POLICY, headers=auth(ADMIN)).json()[
            "version"
        ]
        == 2
    )
    assert client.get("/api/v1/apps/traffic/policy").json()["version"] == 2
    assert client.put("/api/v1/apps/traffic/policy", content=POLICY).status_code == 401
    assert (
        client.put("/api/v1/apps/traffic/policy", content=POLICY, headers=auth("x")).status_code
        == 403
    )


def test_a_violating_batch_gets_its_action_in_the_reply(client: TestClient) -> None:
    token = register(client)
    client.put("/api/v1/apps/traffic/policy", content=POLICY, headers=auth(token))
    healthy = client.post(
        "/api/v1/apps/traffic/telemetry",
        json={"instance": "i-1", "samples": samples("lstm", 50, 0.95)},
        headers=auth(token),
    )
    assert healthy.status_code == 200 and healthy.json() == {"accepted": 50, "actions": []}
    bad = client.post(
        "/api/v1/apps/traffic/telemetry",
        json={"instance": "i-1", "samples": samples("lstm", 50, 0.3, start=50)},
        headers=auth(token),
    )
    [action] = bad.json()["actions"]
    assert action["kind"] == "switch_model" and action["model"] == "linear"
    assert action["trigger"] == "quality < 0.8" and action["values"]["quality"] < 0.8
    result = client.post(
        f"/api/v1/apps/traffic/actions/{action['id']}/result",
        json={"status": "applied", "reason": "switched"},
        headers=auth(token),
    )
    assert result.json() == {"id": action["id"], "status": "applied"}
    [stored] = client.get("/api/v1/apps/traffic/actions").json()
    assert stored["status"] == "applied" and stored["detail"] == "switched"
    windows = client.get("/api/v1/apps/traffic/windows").json()
    assert len(windows) == 2 and windows[1]["signals"]["quality"] < 0.8


def test_a_bad_sample_rejects_the_whole_batch(client: TestClient) -> None:
    token = register(client)
    batch = samples("lstm", 20, 0.9)
    batch[7]["energy_j"] = -1.0
    batch[12]["surprise"] = 1
    reply = client.post(
        "/api/v1/apps/traffic/telemetry", json={"samples": batch}, headers=auth(token)
    )
    assert reply.status_code == 422
    fields = {e["field"] for e in reply.json()["detail"]}
    assert fields == {"samples[7].energy_j", "samples[12].surprise"}
    ok = client.post(
        "/api/v1/apps/traffic/telemetry",
        json={"samples": samples("lstm", 5, 0.9)},
        headers=auth(token),
    )
    assert ok.json()["accepted"] == 5
    assert (
        client.app.state.server.store.count_telemetry(client.app.state.server.app("traffic")) == 5
    )


def test_malformed_oversized_and_unauthenticated_requests(client: TestClient) -> None:
    token = register(client)
    url = "/api/v1/apps/traffic/telemetry"
    assert client.post(url, content=b"{not json", headers=auth(token)).status_code == 422
    big = client.post(url, content=b" " * (MAX_BODY_BYTES + 1), headers=auth(token))
    assert big.status_code == 413 and "bytes" in big.json()["detail"]
    assert client.post(url, json={"samples": samples("lstm", 1, 0.9)}).status_code == 401
    assert (
        client.post("/api/v1/apps/nope/telemetry", json={}, headers=auth(token)).status_code == 404
    )
    nan = samples("lstm", 1, 0.9)
    nan_body = (
        '{"samples": ['
        + str(nan[0]).replace("'", '"').replace('"latency_ms": 1.0', '"latency_ms": NaN')
        + "]}"
    )
    assert client.post(url, content=nan_body, headers=auth(token)).status_code == 422


def test_unknown_action_and_double_result(client: TestClient) -> None:
    token = register(client)
    missing = client.post(
        "/api/v1/apps/traffic/actions/42/result", json={"status": "applied"}, headers=auth(token)
    )
    assert missing.status_code == 404
    bad_status = client.post(
        "/api/v1/apps/traffic/actions/42/result", json={"status": "done"}, headers=auth(token)
    )
    assert bad_status.status_code == 422 and bad_status.json()["detail"][0]["field"] == "status"


def test_openapi_schema_is_served(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert "/api/v1/apps/{name}/telemetry" in schema["paths"]


def test_export_csv_and_parquet_for_a_range(client: TestClient) -> None:
    import csv as csv_module
    import io

    import pyarrow.parquet as pq

    token = register(client)
    client.post(
        "/api/v1/apps/traffic/telemetry",
        json={"samples": samples("lstm", 30, 0.9, metrics={"confidence": 0.5})},
        headers=auth(token),
    )
    reply = client.get("/api/v1/apps/traffic/telemetry.csv?start=10&end=20", headers=auth(token))
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/csv")
    rows = list(csv_module.DictReader(io.StringIO(reply.text)))
    assert [float(r["ts"]) for r in rows] == [float(i) for i in range(10, 20)]
    assert json.loads(rows[0]["metrics"]) == {"confidence": 0.5}
    parquet = client.get("/api/v1/apps/traffic/telemetry.parquet", headers=auth(token))
    table = pq.read_table(io.BytesIO(parquet.content))
    assert table.num_rows == 30 and table.column("model").to_pylist() == ["lstm"] * 30
    assert client.get("/api/v1/apps/traffic/telemetry.csv").status_code == 401


def test_prometheus_metrics(client: TestClient) -> None:
    token = register(client)
    client.put("/api/v1/apps/traffic/policy", content=POLICY, headers=auth(token))
    client.post(
        "/api/v1/apps/traffic/telemetry",
        json={"samples": samples("lstm", 50, 0.3)},
        headers=auth(token),
    )
    text = client.get("/metrics").text
    assert 'harmonia_telemetry_samples_total{app="traffic"} 50' in text
    assert 'harmonia_actions_total{app="traffic",kind="switch_model"} 1' in text
    assert 'harmonia_window_signal{app="traffic",service="default",signal="quality"}' in text


def test_windows_and_actions_outlive_the_server_and_filter_by_time(tmp_path: Path) -> None:
    store = Store(sqlite_url(tmp_path))
    with TestClient(create_app(store, ADMIN)) as first:
        token = register(first)
        first.put("/api/v1/apps/traffic/policy", content=POLICY, headers=auth(token))
        for start, r2 in ((0, 0.95), (50, 0.3), (100, 0.95)):
            body = {"samples": samples("lstm", 50, r2, start=start)}
            first.post("/api/v1/apps/traffic/telemetry", json=body, headers=auth(token))
    store.close()
    store = Store(sqlite_url(tmp_path))  # a new server process on the same database
    with TestClient(create_app(store, ADMIN)) as second:
        windows = second.get("/api/v1/apps/traffic/windows").json()
        assert [(w["start"], w["end"]) for w in windows] == [(0, 49), (50, 99), (100, 149)]
        assert windows[1]["signals"]["quality"] < 0.8 < windows[0]["signals"]["quality"]
        middle = second.get("/api/v1/apps/traffic/windows?start=60&end=120").json()
        assert [w["end"] for w in middle] == [99]
        [action] = second.get("/api/v1/apps/traffic/actions").json()
        assert action["trigger"] == "quality < 0.8"
        assert second.get(f"/api/v1/apps/traffic/actions?start={action['ts'] + 1}").json() == []
    store.close()


def test_described_versions_are_listed_and_reach_the_loop(client: TestClient) -> None:
    token = register(client)
    client.put("/api/v1/apps/traffic/policy", content=POLICY, headers=auth(token))
    url = "/api/v1/apps/traffic/models/svm/versions/2"
    described = {"fingerprint": [1.0, 2.0, 3.0], "details": {"r2": 0.9, "condition": "rain"}}
    assert client.put(url, json=described).status_code == 401
    reply = client.put(url, json=described, headers=auth(token))
    assert reply.status_code == 201, reply.text
    assert reply.json()["fingerprint_size"] == 3
    models = {m["model"]: m for m in client.get("/api/v1/apps/traffic/models").json()}
    assert models["lstm"]["in_service"] and not models["svm"]["in_service"]
    [svm2] = models["svm"]["versions"]
    assert svm2["version"] == 2 and svm2["details"] == {"r2": 0.9, "condition": "rain"}
    server = client.app.state.server
    knowledge = server.loop(server.app("traffic"), "default").knowledge
    info = knowledge.version_info("svm", 2)
    assert info is not None and info.fingerprint == (1.0, 2.0, 3.0)
    # Described again (say, after a re-evaluation): replaced, not duplicated.
    client.put(url, json={"details": {"r2": 0.8}}, headers=auth(token))
    [svm2] = client.get("/api/v1/apps/traffic/models").json()[1]["versions"]
    assert svm2["details"] == {"r2": 0.8}


def test_bad_version_descriptions_name_the_field(client: TestClient) -> None:
    token = register(client)
    unknown = client.put("/api/v1/apps/traffic/models/gpt/versions/1", json={}, headers=auth(token))
    assert unknown.status_code == 422 and "cannot serve 'gpt'" in unknown.text
    bad = client.put(
        "/api/v1/apps/traffic/models/svm/versions/1",
        json={"fingerprint": [1.0, "x"], "details": {}},
        headers=auth(token),
    )
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["field"] == "fingerprint[1]"
    zero = client.put("/api/v1/apps/traffic/models/svm/versions/0", json={}, headers=auth(token))
    assert zero.status_code == 422 and zero.json()["detail"][0]["field"] == "path.version"


def test_a_token_outside_ascii_is_refused_not_a_server_error(client: TestClient) -> None:
    """Headers arrive decoded as Latin-1 and queries as UTF-8: constant-time comparison of
    such a token with a known one must not raise (found by the API fuzzing)."""
    register(client)
    odd = {"Authorization": "Bearer caf\xe9".encode("latin-1")}
    assert client.put("/api/v1/apps/traffic/policy", content=POLICY, headers=odd).status_code == 403
    assert client.post("/api/v1/apps", json={}, headers=odd).status_code == 401
    assert client.post("/registration?key=caf%C3%A9", json={}).status_code in (401, 403, 503)
