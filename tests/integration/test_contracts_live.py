"""Contracts held against live telemetry: a pipeline's end-to-end latency SLO violated by one
slow instance, explained down to that instance and its node, recorded, and remedied by the
action its SLO names (reroute, pulled by the offending service; alert, posted to a webhook);
ROHE's and QoA4ML's contract formats accepted as they are."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from test_pipelines import DETECT, register
from test_push_delivery import Effector
from test_server_api import ADMIN, auth

from harmonia.server.app import create_app
from harmonia.server.contracts import ContractKeeper
from harmonia.store import Store, sqlite_url

DATA = Path(__file__).resolve().parents[1] / "data" / "contracts"
CONTRACT = """
name: detect-sla
window: 5 min
alert_url: {alert_url}
slos:
  - name: e2e-latency
    scope: end_to_end
    condition: p99(latency_ms) <= 100
    window: 20 samples
    severity: critical
    then: reroute
  - name: e2e-latency-page
    scope: end_to_end
    condition: p99(latency_ms) <= 100
    window: 20 samples
    then: alert
  - name: vote-latency
    scope: service
    target: vote
    condition: p95(latency_ms) <= 50
"""


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    store = Store(sqlite_url(tmp_path))
    with TestClient(create_app(store, ADMIN, contract_check_s=0)) as test_client:
        yield test_client
    store.close()


def send(
    client: TestClient, token: str, first: int, count: int, slow: str | None
) -> dict[str, list[dict[str, Any]]]:
    """``count`` traced requests through the pipeline from trace ``first``: the fast
    service's odd traces go to instance ``fast-2``, which takes 300 ms when it is ``slow``.
    Returns each batch's reply actions by instance."""
    start = time.time() - 200 + first
    batches: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for i in range(first, first + count):
        begin = start + (i - first) * 0.5
        fast = "fast-2" if i % 2 and slow else "fast-1"
        took = 300.0 if fast == slow else 10.0
        steps = [
            ("frames", "frames-1", "raw", 5.0),
            ("fast", fast, "linear", took),
            ("accurate", "accurate-1", "lstm", 10.0),
            ("vote", "vote-1", "m", 5.0),
        ]
        clock = begin
        for service, instance, model, latency in steps:
            if service != "accurate":  # accurate runs beside fast
                clock += latency / 1000
            sample = {
                "service": service,
                "trace_id": f"t{i}",
                "model": model,
                "ts": clock if service != "accurate" else begin + 0.015,
                "latency_ms": latency,
            }
            batches.setdefault((service, instance), []).append(sample)
    replies: dict[str, list[dict[str, Any]]] = {}
    order = ["frames", "fast", "accurate", "vote"]  # each stage reports after the one before
    for (_, instance), samples in sorted(batches.items(), key=lambda b: order.index(b[0][0])):
        reply = client.post(
            "/api/v1/apps/detect/telemetry",
            json={"instance": instance, "samples": samples},
            headers=auth(token),
        )
        assert reply.status_code == 200, reply.text
        replies[instance] = reply.json()["actions"]
    return replies


def test_a_slow_instance_is_named_and_its_service_told_to_route_around_it(
    client: TestClient,
) -> None:
    alerts = Effector({"status": "applied", "reason": "paged"})
    try:
        token = register(client)["token"]
        for name, node in (("fast-1", "edge-1"), ("fast-2", "edge-2")):
            reply = client.post(
                "/api/v1/apps/detect/services/fast/instances",
                json={"name": name, "node": node},
                headers=auth(token),
            )
            assert reply.status_code == 201
        put = client.put(
            "/api/v1/apps/detect/contract",
            content=CONTRACT.format(alert_url=alerts.url),
            headers=auth(token),
        )
        assert put.status_code == 201, put.text
        assert client.get("/api/v1/apps/detect/contract").json()["version"] == 1

        send(client, token, 0, 20, slow="fast-2")
        results = client.post("/api/v1/apps/detect/contract/check", headers=auth(token)).json()
        status = {r["slo"]: r for r in results}
        assert status["vote-latency"]["status"] == "met"
        e2e = status["e2e-latency"]
        assert e2e["status"] == "violated"
        assert "classify" in e2e["explanation"] and "fast-2" in e2e["explanation"]
        assert "edge-2" in e2e["explanation"]
        [blamed] = [a for a in e2e["attribution"] if a["instance"]][:1]
        assert (blamed["stage"], blamed["service"], blamed["instance"], blamed["node"]) == (
            "classify",
            "fast",
            "fast-2",
            "edge-2",
        )

        # recorded, with the action its SLO names
        violations = {v["slo"]: v for v in client.get("/api/v1/apps/detect/violations").json()}
        assert set(violations) == {"e2e-latency", "e2e-latency-page"}
        assert violations["e2e-latency"]["severity"] == "critical"
        actions = {a["id"]: a for a in client.get("/api/v1/apps/detect/actions").json()}
        reroute = actions[violations["e2e-latency"]["action_id"]]
        assert (reroute["kind"], reroute["service"]) == ("reroute", "fast")
        assert reroute["context"]["away_from"] == "fast-2"
        assert reroute["trigger"].startswith("e2e-latency:")
        # the alert went to the webhook
        assert client.app.state.server.pusher.join(10)  # type: ignore[attr-defined]
        assert [m["kind"] for m in alerts.received] == ["alert"]

        # a check while still violated records nothing new: one episode, one action
        client.post("/api/v1/apps/detect/contract/check", headers=auth(token))
        assert len(client.get("/api/v1/apps/detect/violations").json()) == 2

        # the fast service gets the reroute with its next batch's reply; it routes around
        # fast-2, and the next window meets the SLO
        replies = send(client, token, 20, 20, slow=None)
        assert [a["kind"] for a in replies["fast-1"]] == ["reroute"]
        assert replies["frames-1"] == [] and replies["vote-1"] == []
        results = client.post("/api/v1/apps/detect/contract/check", headers=auth(token)).json()
        assert {r["slo"]: r["status"] for r in results}["e2e-latency"] == "met"
        assert [s["status"] for s in client.get("/api/v1/apps/detect/slos").json()].count(
            "violated"
        ) == 0
    finally:
        alerts.close()


def test_a_contract_that_does_not_fit_the_app_is_refused_naming_the_field(
    client: TestClient,
) -> None:
    token = register(client)["token"]
    bad = (
        "slos:\n  - name: x\n    scope: service\n    target: nope\n"
        "    condition: p99(latency_ms) <= 1\n"
    )
    reply = client.put("/api/v1/apps/detect/contract", content=bad, headers=auth(token))
    assert reply.status_code == 422 and "nope" in reply.text
    broken = "slos:\n  - name: x\n    condition: p99(latency_ms) <=\n"
    reply = client.put("/api/v1/apps/detect/contract", content=broken, headers=auth(token))
    assert reply.status_code == 422 and "slos" in reply.text
    assert client.get("/api/v1/apps/detect/contract").status_code == 404
    assert client.put("/api/v1/apps/detect/contract", content=bad).status_code == 401


@pytest.mark.parametrize(
    ("file", "form"),
    [("rohe_object_classification.yaml", None), ("qoa4ml_ml_contract.json", "qoa4ml")],
)
def test_rohe_and_qoa4ml_contracts_are_taken_as_they_are(
    client: TestClient, file: str, form: str | None
) -> None:
    body = {**DETECT, "name": "object-classification"}
    token = register(client, body)["token"]
    query = "" if form is None else f"?format={form}"
    reply = client.put(
        f"/api/v1/apps/object-classification/contract{query}",
        content=(DATA / file).read_text(),
        headers=auth(token),
    )
    assert reply.status_code == 201, reply.text
    document = client.get("/api/v1/apps/object-classification/contract").json()["document"]
    assert document["slos"]


E2E_ONLY = """
slos:
  - name: e2e-latency
    scope: end_to_end
    condition: p99(latency_ms) <= 100
    window: 20 samples
    severity: critical
    then: reroute
"""


def with_contract(client: TestClient, contract: str) -> str:
    """Register the detect pipeline, its fast instances on their nodes and ``contract``;
    the app's token."""
    token = register(client)["token"]
    for name, node in (("fast-1", "edge-1"), ("fast-2", "edge-2")):
        reply = client.post(
            "/api/v1/apps/detect/services/fast/instances",
            json={"name": name, "node": node},
            headers=auth(token),
        )
        assert reply.status_code == 201, reply.text
    put = client.put("/api/v1/apps/detect/contract", content=contract, headers=auth(token))
    assert put.status_code == 201, put.text
    return str(token)


def keeper(client: TestClient) -> ContractKeeper:
    return client.app.state.server.contracts  # type: ignore[attr-defined,no-any-return]


def test_a_window_that_closes_is_checked_off_the_request_path(client: TestClient) -> None:
    """No one asks for a check: the 20th trace to reach the last stage closes the SLO's
    window, and the server checks it on its worker, once the other stages reported."""
    token = with_contract(client, E2E_ONLY)
    send(client, token, 0, 19, slow="fast-2")
    assert keeper(client).queue.join(10)
    assert client.get("/api/v1/apps/detect/slos").json() == []  # no window closed yet

    send(client, token, 19, 1, slow="fast-2")
    assert keeper(client).queue.join(10)
    [status] = client.get("/api/v1/apps/detect/slos").json()
    assert (status["status"], status["samples"]) == ("violated", 20)
    [violation] = client.get("/api/v1/apps/detect/violations").json()
    blamed = violation["attribution"][0]
    assert (blamed["instance"], blamed["node"]) == ("fast-2", "edge-2")
    [action] = client.get("/api/v1/apps/detect/actions").json()
    assert (action["id"], action["kind"], action["service"]) == (
        violation["action_id"],
        "reroute",
        "fast",
    )


def test_a_time_window_is_checked_as_it_closes_and_an_idle_app_by_the_fallback(
    tmp_path: Path,
) -> None:
    now = [time.time()]
    store = Store(sqlite_url(tmp_path))
    contract = (
        "slos:\n  - name: vote-latency\n    scope: service\n    target: vote\n"
        "    condition: p95(latency_ms) <= 50\n    window: 60 s\n"
    )
    with TestClient(create_app(store, ADMIN, clock=lambda: now[0], contract_check_s=0)) as client:
        contracts = keeper(client)
        contracts.queue.settle_s = 0.0
        token = with_contract(client, contract)
        app = client.app.state.server.app("detect")  # type: ignore[attr-defined]

        def vote() -> None:
            sample = {"service": "vote", "model": "m", "ts": now[0] - 0.5, "latency_ms": 10.0}
            reply = client.post(
                "/api/v1/apps/detect/telemetry",
                json={"instance": "vote-1", "samples": [sample]},
                headers=auth(token),
            )
            assert reply.status_code == 200, reply.text
            assert contracts.queue.join(10)

        vote()  # the window opens with the first sample the contract sees
        now[0] += 30
        vote()
        assert contracts.states(app) == {}
        now[0] += 31  # 61 s: the window closed
        vote()
        state = contracts.states(app)["vote-latency"]
        assert (state.status, state.checked) == ("met", now[0])

        # while samples come, the periodic check leaves the app to ingestion
        now[0] += 5
        vote()
        assert contracts.fallback(app, 10) is None
        # once they stop, it checks; with nothing left in what a check reads (the
        # contract's longest window, 5 min by default), the SLO has no data
        now[0] += 11
        assert contracts.fallback(app, 10) is not None
        assert contracts.states(app)["vote-latency"].checked == now[0]
        now[0] += 300
        [result] = contracts.fallback(app, 10) or []
        assert result.status == "no_data"
        state = contracts.states(app)["vote-latency"]
        assert (state.status, state.since) == ("no_data", now[0])
    store.close()


def test_an_slo_still_violated_after_a_restart_is_not_recorded_again(tmp_path: Path) -> None:
    store = Store(sqlite_url(tmp_path))
    with TestClient(create_app(store, ADMIN, contract_check_s=0)) as client:
        token = with_contract(client, E2E_ONLY)
        send(client, token, 0, 20, slow="fast-2")
        assert keeper(client).queue.join(10)
        [first] = client.post("/api/v1/apps/detect/contract/check", headers=auth(token)).json()
        assert first["status"] == "violated"
        assert len(client.get("/api/v1/apps/detect/violations").json()) == 1
        app = client.app.state.server.app("detect")  # type: ignore[attr-defined]
        since = keeper(client).states(app)["e2e-latency"].since
    store.close()

    store = Store(sqlite_url(tmp_path))  # a restart: a new server over the same database
    with TestClient(create_app(store, ADMIN, contract_check_s=0)) as client:
        assert client.get("/api/v1/apps/detect/slos").json() == [first]  # as it was left
        [again] = client.post("/api/v1/apps/detect/contract/check", headers=auth(ADMIN)).json()
        assert again["status"] == "violated"
        assert len(client.get("/api/v1/apps/detect/violations").json()) == 1  # one episode
        app = client.app.state.server.app("detect")  # type: ignore[attr-defined]
        state = keeper(client).states(app)["e2e-latency"]
        assert state.since == since and state.checked > since
    store.close()
