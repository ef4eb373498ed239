"""Harmonica's routes, driven with Harmonica's own payload shapes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from test_push_delivery import Effector

from harmonia.server.app import create_app
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


def client(store: Store, address: tuple[str, int] = LOCAL) -> TestClient:
    return TestClient(create_app(store, ADMIN), client=address)


def test_a_harmonica_system_runs_unchanged(store: Store) -> None:
    effector = Effector({"status": "ok"})
    try:
        with client(store) as harmonica:
            added = harmonica.post("/api/policy", json=preset(effector.url))
            assert added.status_code == 201
            assert added.json() == {"message": "Policy 'reg_harmone_score' added successfully"}
            for score in (0.91, 0.85, 0.62):
                reply = harmonica.post(
                    "/api/telemetry",
                    json={"timestamp": 1.0, "score": score, "r2_score": 0.9, "model_used": "lstm"},
                )
                assert reply.json() == {"message": "Telemetry received"}
            knowledge = harmonica.get("/api/knowledge/reg_harmone_score").json()
    finally:
        effector.close()
    assert [t["score"] for t in knowledge["telemetry_history"]] == [0.91, 0.85, 0.62]
    [intervention] = knowledge["intervention_history"]
    assert intervention["tactic_id"] == "execute_mape_plan"  # the top priority
    assert intervention["trigger_value"] == 0.62 and intervention["status"] == "CONFIRMED_SUCCESS"
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
        missing = harmonica.get("/api/knowledge/nope")
        assert missing.status_code == 404 and missing.json() == {"error": "Policy not found"}


def test_invalid_policies_are_refused_with_harmonicas_error_shape(store: Store) -> None:
    with client(store) as harmonica:
        bare = harmonica.post("/api/policy", json={"quality_attribute": "score"})
        assert bare.status_code == 400 and bare.json() == {"error": "Invalid policy format"}
        dynamic = preset("http://127.0.0.1:9/t")
        dynamic["adaptation_boundary"]["dynamic_logic"] = "historic_avg * 1.1"
        refused = harmonica.post("/api/policy", json=dynamic)
        assert refused.status_code == 400
        assert refused.json()["error"][0]["field"] == "adaptation_boundary.dynamic_logic"


def test_unreachable_tactic_endpoint_is_recorded(store: Store) -> None:
    with client(store) as harmonica:
        harmonica.post("/api/policy", json=preset("http://127.0.0.1:9/tactic"))
        harmonica.post("/api/telemetry", json={"timestamp": 1.0, "score": 0.1})
        [intervention] = harmonica.get("/api/knowledge/reg_harmone_score").json()[
            "intervention_history"
        ]
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
