"""Harmonica's routes, driven with Harmonica's own payload shapes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from test_push_delivery import Effector

from harmonia.server.app import create_app
from harmonia.server.service import Guards
from harmonia.store import Store, sqlite_url

ADMIN = "admin-secret"
LOCAL = ("127.0.0.1", 50000)
REMOTE = ("203.0.113.7", 50000)  # TEST-NET-3: never routed; only the address is used here


def preset(endpoint: str) -> dict:
    """Harmonica's reg_harmone_score preset, pointed at a test effector."""
    return {
        "policy_id": "reg_harmone_score",
        "quality_attribute": "score",
        "adaptation_boundary": {
            "type": "STATIC_THRESHOLD",
            "condition": "LESS_THAN",
            "threshold": 0.78,
            "dynamic_logic": None,
        },
        "tactics": [
            {
                "tactic_id": "handle_data_drift",
                "priority": 2,
                "tactic_type": "CORE",
                "tactic_endpoint": endpoint,
            },
            {
                "tactic_id": "execute_mape_plan",
                "priority": 1,
                "tactic_type": "CORE",
                "tactic_endpoint": endpoint,
            },
        ],
        "associated_qas": ["r2_score", "normalized_energy", "model_used"],
    }


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    instance = Store(sqlite_url(tmp_path))
    yield instance
    instance.close()


def client(
    store: Store, address: tuple[str, int] = LOCAL, *, guards: Guards | None = None
) -> TestClient:
    """A client as a local Harmonica system is one: from loopback, to a loopback Host."""
    return TestClient(
        create_app(store, ADMIN, guards=guards), base_url="http://127.0.0.1:8000", client=address
    )


def interventions(harmonica: TestClient) -> list[dict]:
    """The interventions once every tactic call has been made (they leave off the request
    path, through the server's outbox)."""
    assert harmonica.app.state.server.outbox.join(10)
    return harmonica.get("/api/knowledge/reg_harmone_score").json()["intervention_logs"]


def test_a_harmonica_system_runs_unchanged(store: Store) -> None:
    effector = Effector({"status": "ok"})
    try:
        with client(store) as harmonica:
            added = harmonica.post("/api/policy", json=preset(effector.url))
            assert added.status_code == 201
            assert added.json() == {"message": "Policy added"}  # Harmonica's words
            for score in (0.91, 0.85, 0.62):
                reply = harmonica.post(
                    "/api/telemetry",
                    json={"timestamp": 1.0, "score": score, "r2_score": 0.9, "model_used": "lstm"},
                )
                assert reply.json() == {"message": "Telemetry received"}
            [intervention] = interventions(harmonica)
            knowledge = harmonica.get("/api/knowledge/reg_harmone_score").json()
    finally:
        effector.close()
    assert [t["score"] for t in knowledge["telemetry_history"]] == [0.91, 0.85, 0.62]
    assert intervention["tactic_id"] == "execute_mape_plan"  # the top priority
    assert intervention["trigger_value"] == 0.62 and intervention["status"] == "CONFIRMED_SUCCESS"
    assert intervention["trigger_metric"] == "score"
    [tactic] = effector.received
    assert tactic == {
        "tactic_id": "execute_mape_plan",
        "trigger_value": 0.62,
        "trigger_timestamp": intervention["timestamp"],
    }


def test_unassigned_telemetry_and_unknown_policy(store: Store) -> None:
    with client(store) as harmonica:
        harmonica.post("/api/telemetry", json={"timestamp": 1.0, "latency": 3})
        unassigned = harmonica.get("/api/knowledge/unassigned").json()
        assert unassigned["telemetry_history"] == [{"timestamp": 1.0, "latency": 3}]
        assert unassigned["policy"] == {"policy_id": "unassigned"}
        missing = harmonica.get("/api/knowledge/nope")
        assert missing.status_code == 200  # as Harmonica: an unknown policy is empty
        assert missing.json() == {"policy": None, "telemetry_history": [], "intervention_logs": []}


def test_invalid_policies_are_refused_with_harmonicas_error_shape(store: Store) -> None:
    with client(store) as harmonica:
        bare = harmonica.post("/api/policy", json={"quality_attribute": "score"})
        assert bare.status_code == 400 and bare.json() == {"error": "Invalid policy format"}
        dynamic = preset("http://127.0.0.1:9/t")
        dynamic["adaptation_boundary"]["dynamic_logic"] = "__import__('os').system('x')"
        refused = harmonica.post("/api/policy", json=dynamic)
        assert refused.status_code == 400
        [error] = refused.json()["error"]
        assert error["field"] == "adaptation_boundary.dynamic_logic"
        assert "historic_avg * 1.3" in error["reason"]  # says what is expected


def test_unreachable_tactic_endpoint_is_recorded(store: Store) -> None:
    with client(store) as harmonica:
        harmonica.post("/api/policy", json=preset("http://127.0.0.1:9/tactic"))
        harmonica.post("/api/telemetry", json={"timestamp": 1.0, "score": 0.1})
        [intervention] = interventions(harmonica)
    assert intervention["status"] == "REQUEST_FAILED"


def test_token_less_only_from_loopback(store: Store) -> None:
    with client(store, REMOTE) as remote:
        denied = remote.post("/api/telemetry", json={"score": 0.5})
        assert denied.status_code == 401 and "admin token" in denied.json()["error"]
        allowed = remote.post(
            "/api/telemetry", json={"score": 0.5}, headers={"Authorization": f"Bearer {ADMIN}"}
        )
        assert allowed.status_code == 200
        assert remote.get("/api/knowledge/unassigned").status_code == 401


def test_policy_posted_as_harmonica_json_text(store: Store) -> None:
    with client(store) as harmonica:
        reply = harmonica.post(
            "/api/policy",
            content=json.dumps(preset("http://127.0.0.1:9/t")),
            headers={"Content-Type": "application/json"},
        )
        assert reply.status_code == 201
        not_json = harmonica.post(
            "/api/policy", content=b"{oops", headers={"Content-Type": "application/json"}
        )
        assert not_json.status_code == 400


def test_token_less_needs_a_loopback_host_and_no_foreign_origin(store: Store) -> None:
    """A page in a local browser (cross-site request) or a DNS-rebound name reaches the
    server from loopback too: neither may use Harmonica's token-less access."""
    with client(store) as harmonica:
        page = harmonica.post(
            "/api/policy",
            json=preset("http://127.0.0.1:9/t"),
            headers={"Origin": "https://evil.example"},
        )
        assert page.status_code == 401
        rebound = harmonica.get("/api/knowledge/unassigned", headers={"Host": "evil.example"})
        assert rebound.status_code == 401
        assert harmonica.get("/api/knowledge/unassigned").status_code == 200
        local = harmonica.get("/api/knowledge/unassigned", headers={"Host": "localhost:8000"})
        assert local.status_code == 200
    allowed = Guards(cors_origins=("http://localhost:3000",))
    with client(store, guards=allowed) as harmonica:
        dashboard = harmonica.get(
            "/api/knowledge/unassigned", headers={"Origin": "http://localhost:3000"}
        )
        assert dashboard.status_code == 200
        assert dashboard.headers["access-control-allow-origin"] == "http://localhost:3000"
        preflight = harmonica.options(
            "/api/policy",
            headers={
                "Origin": "http://localhost:3000",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        assert preflight.status_code == 200
        assert "POST" in preflight.headers["access-control-allow-methods"]
        other = harmonica.options(
            "/api/policy",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert "access-control-allow-origin" not in other.headers


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://[fe80::1]/x",
        "file:///etc/passwd",
        "http://",
    ],
)
def test_tactic_endpoints_the_server_must_not_call_are_refused(store: Store, endpoint: str) -> None:
    with client(store) as harmonica:
        reply = harmonica.post("/api/policy", json=preset(endpoint))
    assert reply.status_code == 400
    assert reply.json()["error"][0]["field"] == "tactics[0].tactic_endpoint"


def test_link_local_tactic_endpoints_when_the_operator_allows_them(store: Store) -> None:
    relaxed = Guards(allow_link_local_targets=True)
    with client(store, guards=relaxed) as harmonica:
        reply = harmonica.post("/api/policy", json=preset("http://169.254.169.254/x"))
    assert reply.status_code == 201


def test_a_hanging_tactic_endpoint_does_not_hold_the_request(store: Store) -> None:
    """The tactic's POST leaves through the outbox: the telemetry is answered at once, and
    the intervention settles when the endpoint times out."""
    import socket
    import time

    with socket.socket() as hanging:  # accepts connections (the backlog) and never answers
        hanging.bind(("127.0.0.1", 0))
        hanging.listen(16)
        endpoint = f"http://127.0.0.1:{hanging.getsockname()[1]}/tactic"
        with client(store) as harmonica:
            harmonica.post("/api/policy", json=preset(endpoint))
            started = time.monotonic()
            for _ in range(3):
                reply = harmonica.post("/api/telemetry", json={"timestamp": 1.0, "score": 0.1})
                assert reply.status_code == 200
            assert harmonica.get("/healthz").status_code == 200
            answered = time.monotonic() - started
            records = interventions(harmonica)
    assert answered < 1.5  # each tactic call would wait 2 s for its timeout on the path
    assert [r["status"] for r in records] == ["REQUEST_FAILED"] * 3


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"[" * 100_000 + b"]" * 100_000, 400),  # orjson refuses it: not JSON to us
        (b'{"a":' * 100 + b"1" + b"}" * 100, 413),  # JSON, but nested beyond the bound
    ],
)
def test_deeply_nested_bodies_are_refused(store: Store, body: bytes, status: int) -> None:
    with client(store) as harmonica:
        for route in ("/api/telemetry", "/api/policy"):
            reply = harmonica.post(
                route, content=body, headers={"Content-Type": "application/json"}
            )
            assert reply.status_code == status, (route, reply.text)
            assert "error" in reply.json()
