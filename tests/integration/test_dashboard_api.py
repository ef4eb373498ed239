"""The dashboard's server side through HTTP against the ASGI app: overview, presets,
validation, and the guards on runs, experiments and static files."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from test_server_api import ADMIN, POLICY, auth, register, samples

from harmonia.policies import presets
from harmonia.server.app import create_app
from harmonia.store import Store, sqlite_url


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    store = Store(sqlite_url(tmp_path))
    with TestClient(create_app(store, ADMIN, data_dir=tmp_path)) as test_client:
        yield test_client
    store.close()


def test_the_page_and_plotly_are_served_without_a_cdn(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    local = [s for s in sources if s.startswith(("/", "#")) and not s.startswith("//")]
    assert sources and local == sources, sources
    plotly = client.get("/static/plotly.min.js")
    assert plotly.status_code == 200 and len(plotly.content) > 1_000_000
    for name in ("../app.py", "..%2Fapp.py", "app.py", "nothing.js"):
        assert client.get(f"/static/{name}").status_code == 404


def test_login_checks_the_admin_token(client: TestClient) -> None:
    assert client.get("/api/v1/auth").status_code == 401
    assert client.get("/api/v1/auth", headers=auth("wrong")).status_code == 401
    assert client.get("/api/v1/auth", headers=auth(ADMIN)).json() == {"admin": True}


def test_every_preset_is_offered_and_valid(client: TestClient) -> None:
    offered = {p["name"]: p for p in client.get("/api/v1/presets").json()}
    assert set(offered) == set(presets())
    assert offered["traffic-switch"]["strategy"] == "switch"
    assert offered["traffic-switch"]["text"].startswith("#")  # comments kept
    for preset in offered.values():
        reply = client.post("/api/v1/policy/validate", content=preset["text"]).json()
        assert reply["valid"], (preset["name"], reply["issues"])


def test_validation_names_the_field(client: TestClient) -> None:
    bad = POLICY.replace("quality < 0.8", "quality <")
    reply = client.post("/api/v1/policy/validate", content=bad).json()
    assert not reply["valid"]
    assert reply["issues"][0]["field"] == "boundaries[0].when"


def test_overview_shows_model_score_drift_and_open_violations(client: TestClient) -> None:
    token = register(client)
    client.put("/api/v1/apps/traffic/policy", content=POLICY, headers=auth(token))
    for start, r2 in ((0, 0.95), (50, 0.3)):
        body = {"samples": samples("lstm", 50, r2, start=start)}
        client.post("/api/v1/apps/traffic/telemetry", json=body, headers=auth(token))
    [app] = client.get("/api/v1/overview").json()
    assert app["name"] == "traffic" and app["strategy"] == "switch" and app["model"] == "lstm"
    assert app["window"]["signals"]["quality"] < 0.8
    assert app["violations"] == ["quality < 0.8"]
    assert app["actions"]["switch_model"] == 1 and app["open_actions"] == 1
    assert client.get("/api/v1/apps/traffic/status").json()["violations"] == ["quality < 0.8"]
    assert client.get("/api/v1/apps/nope/status").status_code == 404


def test_runs_and_experiments_need_the_admin_token_and_known_names(
    client: TestClient, tmp_path: Path
) -> None:
    assert client.post("/api/v1/runs", json={"system": "traffic"}).status_code == 401
    unknown = client.post("/api/v1/runs", json={"system": "weather"}, headers=auth(ADMIN))
    assert unknown.status_code == 422 and "traffic" in unknown.text
    odd = client.post(
        "/api/v1/runs", json={"system": "traffic", "app": "../x"}, headers=auth(ADMIN)
    )
    assert odd.status_code == 422
    shell = client.post(
        "/api/v1/experiments",
        json={"system": "traffic", "approaches": ["all; rm -rf /"]},
        headers=auth(ADMIN),
    )
    assert shell.status_code == 422
    assert client.delete("/api/v1/runs/99", headers=auth(ADMIN)).status_code == 404
    assert client.get("/api/v1/systems").json()["traffic"] == ["linear", "svm", "lstm"]


def test_finished_experiments_are_listed_and_read(client: TestClient, tmp_path: Path) -> None:
    folder = tmp_path / "experiments" / "traffic-1"
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps({"system": "traffic", "approaches": []}))
    assert client.get("/api/v1/experiments").json() == [
        {"id": "traffic-1", "status": "finished", "run": None}
    ]
    assert client.get("/api/v1/experiments/traffic-1").json()["system"] == "traffic"
    assert client.get("/api/v1/experiments/..").status_code == 404
    assert client.get("/api/v1/experiments/missing").status_code == 404


def test_policy_versions_and_the_latest_adaptation_are_listed(client: TestClient) -> None:
    token = register(client)
    client.put("/api/v1/apps/traffic/policy", content=POLICY, headers=auth(token))
    client.put(
        "/api/v1/apps/traffic/policy",
        content=POLICY.replace("quality < 0.8", "quality < 0.9"),
        headers=auth(token),
    )
    versions = client.get("/api/v1/apps/traffic/policies").json()
    assert [v["version"] for v in versions] == [1, 2]
    assert versions[1]["document"]["boundaries"][0]["when"] == "quality < 0.9"
    for start, r2 in ((0, 0.95), (50, 0.3)):
        body = {"samples": samples("lstm", 50, r2, start=start)}
        client.post("/api/v1/apps/traffic/telemetry", json=body, headers=auth(token))
    latest = client.get("/api/v1/apps/traffic/status").json()["latest_action"]
    assert latest["kind"] == "switch_model" and latest["trigger"] == "quality < 0.9"


def test_saving_a_policy_keeps_the_status_of_the_service(client: TestClient) -> None:
    """A new policy version takes effect at the next window: until then the status still
    shows the version in service and the last window's score, quality, energy and drift."""
    token = register(client)
    client.put("/api/v1/apps/traffic/policy", content=POLICY, headers=auth(token))
    # version 1, then version 3 (retrained) for two windows: the second is compared with the
    # first for drift
    for start, version in ((0, 1), (50, 3), (100, 3)):
        body = {"samples": samples("lstm", 50, 0.95, start=start, model_version=version)}
        client.post("/api/v1/apps/traffic/telemetry", json=body, headers=auth(token))
    before = client.get("/api/v1/apps/traffic/status").json()
    assert before["model"] == "lstm" and before["version"] == 3
    assert before["window"]["signals"]["quality"] > 0.8
    assert before["drift"]

    saved = client.put(
        "/api/v1/apps/traffic/policy",
        content=POLICY.replace("quality < 0.8", "quality < 0.5"),
        headers=auth(token),
    )
    assert saved.status_code == 201, saved.text
    after = client.get("/api/v1/apps/traffic/status").json()
    assert after["policy_version"] == 2
    assert (after["model"], after["version"]) == ("lstm", 3)
    assert after["window"] == before["window"]
    assert after["drift"] == before["drift"]
    assert after["violations"] == []  # the last window read against the new boundaries
    # the overview says the same
    [row] = client.get("/api/v1/overview").json()
    assert row["version"] == 3 and row["window"] == before["window"]


def test_the_status_names_the_drift_detectors_in_force(client: TestClient) -> None:
    """The live view tells "no detector" from "no statistic yet" with these."""
    token = register(client)
    assert client.get("/api/v1/apps/traffic/status").json()["drift_detectors"] == []
    client.put("/api/v1/apps/traffic/policy", content=POLICY, headers=auth(token))
    status = client.get("/api/v1/apps/traffic/status").json()
    assert status["drift_detectors"] == ["kl"]  # the switch strategy reads kl
    assert status["drift_watch"] == "drift_value"
    single = POLICY.replace("strategy: switch", "strategy: single").split("boundaries:")[0]
    reply = client.put("/api/v1/apps/traffic/policy", content=single, headers=auth(token))
    assert reply.status_code == 201, reply.text
    assert client.get("/api/v1/apps/traffic/status").json()["drift_detectors"] == []
