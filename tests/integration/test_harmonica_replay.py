"""Harmonica's dashboard and managed-system wrapper, replayed against Harmonia.

``tests/data/harmonica/sequences.json`` holds the requests Harmonica's dashboard
(tool/frontend/dashboard.html) and wrapper (tool/run_managed_system.py) send, and what
Harmonica's own server (tool/app.py) answered, recorded by ``tests/data/harmonica/record.py``
(sa4s-serc/HarmonE-tool, MIT licence). Each request is sent to Harmonia, in order, with the
tactic endpoint pointed at a test effector, and Harmonia must answer as Harmonica did:
status, JSON bodies, CORS headers for the dashboard's origin, the knowledge the dashboard
polls (timestamps aside) and the tactics POSTed, primary and secondary boundaries alike.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from test_push_delivery import Effector

from harmonia.compat.harmonica.tool import HarmonicaOptions
from harmonia.server.app import create_app
from harmonia.server.service import Guards
from harmonia.store import Store, sqlite_url

RECORDED = json.loads(
    (Path(__file__).parents[1] / "data" / "harmonica" / "sequences.json").read_text()
)
DASHBOARD = "http://localhost:8000"
HARMONICA_TACTIC = "http://localhost:8080/adaptor/tactic"
ADMIN = "admin-secret"


def _swap(value: Any, old: str, new: str) -> Any:
    """``value`` with every string ``old`` replaced by ``new`` (the tactic endpoint)."""
    return json.loads(json.dumps(value).replace(old, new))


def _delivered(client: TestClient) -> None:
    """Wait until every tactic call queued so far was made."""
    app: Any = client.app
    assert app.state.server.outbox.join(10)


def _without_timestamps(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in log.items() if k != "timestamp"} for log in logs]


@pytest.fixture
def tool(tmp_path: Path) -> Path:
    """A Harmonica tool folder: the base system's folders and a wrapper that only waits."""
    folder = tmp_path / "tool"
    for base in ("managed_system_regression", "managed_system_cv"):
        (folder / base / "mape_logic").mkdir(parents=True)
        (folder / base / "knowledge").mkdir()
        for name in ("__init__.py", "monitor.py", "analyse.py", "plan.py", "execute.py"):
            (folder / base / "mape_logic" / name).write_text("# base\n")
        (folder / base / "mape_logic" / "manage.py").write_text("# base\n")
    (folder / "policies").mkdir()
    (folder / "run_managed_system.py").write_text("import time\ntime.sleep(60)\n")
    (folder / "approach.conf").write_text("reg_single")
    return folder


@pytest.fixture
def effector() -> Iterator[Effector]:
    server = Effector({"message": "Command queued."})
    yield server
    server.close()


@pytest.fixture
def harmonia(tmp_path: Path, tool: Path) -> Iterator[TestClient]:
    store = Store(sqlite_url(tmp_path))
    options = HarmonicaOptions(tool_dir=tool, python="python3", custom_mape=True, check_every_s=0.2)
    app = create_app(
        store, ADMIN, guards=Guards(cors_origins=(DASHBOARD,)), harmonica_options=options
    )
    with TestClient(app, base_url="http://localhost:5000", client=("127.0.0.1", 5000)) as client:
        yield client
    store.close()


def _send(client: TestClient, request: dict[str, Any], endpoint: str) -> Any:
    kwargs: dict[str, Any] = {"headers": request.get("headers", {})}
    if "json" in request:
        kwargs["json"] = _swap(request["json"], HARMONICA_TACTIC, endpoint)
    if "content" in request:
        kwargs["content"] = request["content"].encode()
    if "files" in request:
        kwargs["files"] = [(f, (n, c.encode())) for f, n, c in request["files"]]
        kwargs["data"] = request.get("data", {})
    return client.request(request["method"], request["path"], **kwargs)


def _knowledge_settled(
    client: TestClient, path: str, expected: dict[str, Any], endpoint: str
) -> dict[str, Any]:
    """The knowledge once its interventions are those Harmonica had (tactic calls and the
    secondary check run in the background), or as it is after 10 s."""
    deadline = time.monotonic() + 10
    want = _without_timestamps(_swap(expected["intervention_logs"], HARMONICA_TACTIC, endpoint))
    while True:
        answer: dict[str, Any] = client.get(path).json()
        if _without_timestamps(answer["intervention_logs"]) == want:
            return answer
        if time.monotonic() > deadline:
            return answer
        time.sleep(0.05)


def test_the_dashboard_and_the_wrapper_get_harmonicas_answers(
    harmonia: TestClient, effector: Effector, tool: Path
) -> None:
    endpoint = effector.url
    for exchange in RECORDED["exchanges"]:
        step, request, recorded = exchange["step"], exchange["request"], exchange["response"]
        if request["method"] == "GET" and request["path"].startswith("/api/knowledge/"):
            expected = _swap(recorded["body"], HARMONICA_TACTIC, endpoint)
            answer = _knowledge_settled(harmonia, request["path"], expected, endpoint)
            assert answer["policy"] == expected["policy"], step
            assert answer["telemetry_history"] == expected["telemetry_history"], step
            got, want = answer["intervention_logs"], expected["intervention_logs"]
            assert _without_timestamps(got) == _without_timestamps(want), step
            assert all(isinstance(log["timestamp"], float) for log in got), step
            continue
        reply = _send(harmonia, request, endpoint)
        assert reply.status_code == recorded["status"], (step, reply.text)
        if recorded["content_type"] == "application/json":
            assert reply.json() == recorded["body"], step
        origin = request.get("headers", {}).get("Origin")
        if origin is not None:
            assert reply.headers["access-control-allow-origin"] == origin, step
        if request["method"] == "OPTIONS":
            assert "POST" in reply.headers["access-control-allow-methods"], step
            assert "content-type" in reply.headers["access-control-allow-headers"].lower(), step
        if step == "dashboard.write_approach":
            assert (tool / "approach.conf").read_text() == RECORDED["effects"]["approach_conf"]
        if step == "single.set_model":
            model = tool / "managed_system_regression" / "knowledge" / "model.csv"
            assert model.read_text() == RECORDED["effects"]["model_csv"]
    _delivered(harmonia)
    tactics = [t["json"] for group in RECORDED["tactics"].values() for t in group]
    posted = [t for t in tactics if t is not None]  # (the wrapper's shutdown call: no body)
    assert [t["tactic_id"] for t in posted] == [
        "execute_mape_plan",
        "handle_data_drift",  # the secondary boundary, on kl_div
        "",  # reg_single_svm.json's tactic, forwarded as it is
        "my_own_tactic",  # and a system's own, on a dynamic boundary
    ]
    assert [
        {k: v for k, v in t.items() if k != "trigger_timestamp"} for t in effector.received
    ] == [{k: v for k, v in t.items() if k != "trigger_timestamp"} for t in posted]
    custom = tool / "managed_system_custom" / "mape_logic"
    assert sorted(p.name for p in custom.iterdir()) == RECORDED["effects"]["uploaded_mape_files"]
    assert (custom / "monitor.py").read_text() == "# ours\n"


def test_values_are_kept_as_sent(harmonia: TestClient, effector: Effector) -> None:
    """5 stays 5 (not 5.0) in the knowledge and in the tactic's POST."""
    policy = {
        "policy_id": "ints",
        "quality_attribute": "errors",
        "adaptation_boundary": {"condition": "GREATER_THAN", "threshold": 3},
        "tactics": [{"tactic_id": "my_tactic", "priority": 1, "tactic_endpoint": effector.url}],
    }
    assert harmonia.post("/api/policy", json=policy).status_code == 201
    harmonia.post("/api/telemetry", json={"errors": 5, "timestamp": 7})
    _delivered(harmonia)
    text = harmonia.get("/api/knowledge/ints").text
    assert '"trigger_value":5,' in text.replace(" ", "")
    assert '"errors":5' in text.replace(" ", "")
    [posted] = effector.received
    assert posted["tactic_id"] == "my_tactic" and posted["trigger_value"] == 5
    assert isinstance(posted["trigger_value"], int)


def test_secondary_boundaries_are_checked_every_period(
    harmonia: TestClient, effector: Effector
) -> None:
    """kl_div 0.3 > 0.1: handle_data_drift goes to the first tactic's endpoint once per
    message (the period is 0.2 s here; Harmonica's 30 s by default)."""
    policy = _swap(RECORDED["exchanges"][7]["request"]["json"], HARMONICA_TACTIC, effector.url)
    assert policy["secondary_boundaries"][0]["threshold"] == 0.1
    assert harmonia.post("/api/policy", json=policy).status_code == 201
    harmonia.post("/api/telemetry", json={"score": 0.9, "kl_div": 0.3})
    deadline = time.monotonic() + 5
    while not effector.received and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.6)  # three more periods: the same message is not checked again
    assert [(t["tactic_id"], t["trigger_value"]) for t in effector.received] == [
        ("handle_data_drift", 0.3)
    ]
    [log] = harmonia.get(f"/api/knowledge/{policy['policy_id']}").json()["intervention_logs"]
    assert log["trigger_metric"] == "kl_div"


def test_reset_forgets_policies_telemetry_and_interventions(
    harmonia: TestClient, effector: Effector
) -> None:
    policy = _swap(RECORDED["exchanges"][7]["request"]["json"], HARMONICA_TACTIC, effector.url)
    harmonia.post("/api/policy", json=policy)
    harmonia.post("/api/telemetry", json={"score": 0.1})
    harmonia.post("/api/telemetry", json={"latency": 3})
    _delivered(harmonia)
    assert harmonia.post("/api/reset").json() == {"message": "Knowledge base reset."}
    empty: dict[str, Any] = {"policy": None, "telemetry_history": [], "intervention_logs": []}
    assert harmonia.get(f"/api/knowledge/{policy['policy_id']}").json() == empty
    assert harmonia.get("/api/knowledge/unassigned").json()["telemetry_history"] == []
    harmonia.post("/api/telemetry", json={"score": 0.1})  # no policy any more: no tactic
    _delivered(harmonia)
    assert len(effector.received) == 1


def test_text_plain_telemetry_is_refused_like_harmonica(harmonia: TestClient) -> None:
    reply = harmonia.post(
        "/api/telemetry", content=b'{"score": 0.5}', headers={"Content-Type": "text/plain"}
    )
    assert reply.status_code == 415 and "application/json" in reply.json()["error"]
    assert harmonia.get("/api/knowledge/unassigned").json()["telemetry_history"] == []
