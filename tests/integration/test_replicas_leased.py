"""What replicas show of their leases (``GET /replicas``) and the lease of contract checks:
two servers in this process over one PostgreSQL database (each with its keeper, feeder and
listener threads running, as ``harmonia serve`` runs them), one owning the app's loop, the
other its contract checks; telemetry sent to both closes the contract's windows on both,
and the SLO that becomes violated is recorded once, not once per replica. On SQLite the
route says there are no replicas.

About 10-20 s on an idle 2-core machine (the servers starting and handing a lease over)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from databases import fresh_postgres
from fastapi.testclient import TestClient
from test_server_api import ADMIN, auth

from harmonia.server.app import create_app
from harmonia.server.leases import ReplicaOptions
from harmonia.store import Store, sqlite_url

APP = "leased"
POLICY = """
policy: leased
system: leased
models: [linear, svm]
initial_model: svm
window: 10 samples
strategy: switch
boundaries:
  - when: mean(error) > 0.5
    then: switch_model
"""
#: violated as soon as 20 samples of 300 ms are in
CONTRACT = """
name: leased-sla
slos:
  - name: latency
    scope: service
    target: default
    condition: p95(latency_ms) <= 50
    window: 20 samples
    then: alert
"""


def wait_for(what: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = what()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout} s")


def test_a_single_server_says_it_has_no_replicas(tmp_path: Path) -> None:
    store = Store(sqlite_url(tmp_path))
    try:
        with TestClient(create_app(store, ADMIN)) as client:
            assert client.get("/api/v1/replicas").status_code == 401
            reply = client.get("/api/v1/replicas", headers=auth(ADMIN))
            assert reply.status_code == 200, reply.text
            body = reply.json()
            assert body["replicas"] is False and body["this"] is None
            assert body["items"] == [] and "single server" in body["detail"]
    finally:
        store.close()


@pytest.fixture
def two(tmp_path: Path) -> Iterator[tuple[TestClient, TestClient]]:
    with fresh_postgres() as url:
        stores = [Store(url), Store(url)]
        try:
            apps = [
                create_app(
                    store,
                    ADMIN,
                    data_dir=tmp_path / name,
                    contract_check_s=0,
                    replica=ReplicaOptions(name),
                )
                for store, name in zip(stores, "ab", strict=True)
            ]
            with TestClient(apps[0]) as a, TestClient(apps[1]) as b:
                yield a, b
        finally:
            for store in stores:
                store.close()


def leases_of(client: TestClient) -> dict[str, Any]:
    reply = client.get("/api/v1/replicas", headers=auth(ADMIN))
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["replicas"] is True
    return {
        f"{lease['kind']}:{item['id']}": {**lease, "owner": item["id"]}
        for item in body["items"]
        for lease in item["leases"]
    }


def samples(first: int, count: int, latency_ms: float = 300.0) -> list[dict[str, Any]]:
    now = time.time()
    return [
        {"model": "svm", "ts": now - 5 + (first + i) * 0.01, "latency_ms": latency_ms}
        for i in range(count)
    ]


def register(client: TestClient) -> str:
    """Register the app; its token."""
    reply = client.post(
        "/api/v1/apps",
        json={"name": APP, "owner": "tests", "models": ["linear", "svm"]},
        headers=auth(ADMIN),
    )
    assert reply.status_code == 201, reply.text
    token: str = reply.json()["token"]
    return token


def check(client: TestClient) -> list[str]:
    reply = client.post(f"/api/v1/apps/{APP}/contract/check", headers=auth(ADMIN))
    assert reply.status_code == 200, reply.text
    return [r["status"] for r in reply.json()]


def violations(client: TestClient) -> list[dict[str, Any]]:
    reply = client.get(f"/api/v1/apps/{APP}/violations", headers=auth(ADMIN))
    assert reply.status_code == 200, reply.text
    found: list[dict[str, Any]] = reply.json()
    return found


def test_contract_checks_are_leased_and_a_violation_is_recorded_once(
    two: tuple[TestClient, TestClient],
) -> None:
    a, b = two
    token = register(a)
    admin = auth(ADMIN)
    assert a.put(f"/api/v1/apps/{APP}/policy", content=POLICY, headers=admin).status_code == 201
    put = b.put(f"/api/v1/apps/{APP}/contract", content=CONTRACT, headers=admin)
    assert put.status_code == 201, put.text

    # each lease is held by one replica (the one the policy or contract was applied on,
    # unless the other's keeper looked first); each replica says which it holds itself
    def both_seen() -> tuple[dict[str, Any], dict[str, Any]] | None:
        seen = leases_of(a)
        loop = [lease for k, lease in seen.items() if k.startswith("loop:")]
        contract = [lease for k, lease in seen.items() if k.startswith("contract:")]
        return (loop[0], contract[0]) if len(loop) == len(contract) == 1 else None

    loop, contract = wait_for(both_seen)
    assert (loop["app"], loop["service"], loop["expired"]) == (APP, "default", False)
    assert (contract["app"], contract["service"], contract["token"]) == (APP, None, 1)
    assert loop["here"] == (loop["owner"] == "a")
    assert contract["here"] == (contract["owner"] == "a")
    from_b = leases_of(b)
    assert from_b[f"contract:{contract['owner']}"]["here"] == (contract["owner"] == "b")
    assert from_b[f"loop:{loop['owner']}"]["here"] == (loop["owner"] == "b")
    # a domain key sees the leases of its domains' apps (APP is in the default domain)
    key = a.post(
        "/api/v1/domains/default/keys", json={"scope": "read", "name": "ops"}, headers=admin
    )
    assert key.status_code == 201, key.text
    theirs = a.get("/api/v1/replicas", headers=auth(key.json()["token"])).json()
    assert theirs["replicas"] is True
    assert any(lease["app"] == APP for item in theirs["items"] for lease in item["leases"])

    def send(first: int, latency_ms: float) -> None:
        # to both replicas: each closes a window of the contract (20 samples)
        for client, start in ((a, first), (b, first + 20)):
            sent = client.post(
                f"/api/v1/apps/{APP}/telemetry",
                json={"samples": samples(start, 20, latency_ms)},
                headers=auth(token),
            )
            assert sent.status_code == 200, sent.text

    # fast first: both replicas check and find the SLO met (each checked it, as every
    # replica did before checks were leased, and would remember "met")
    send(0, 10.0)
    assert check(a) == check(b) == ["met"]
    # then slow: the SLO becomes violated, seen by both; only the holder records it, once
    send(40, 300.0)
    assert check(a) == check(b) == ["violated"]  # a evaluates all the same
    wait_for(lambda: violations(a))
    time.sleep(2.5)  # the checks a asked b for (after b's settle time) have run
    assert len(violations(a)) == 1
    assert [s["status"] for s in b.get(f"/api/v1/apps/{APP}/slos").json()] == ["violated"]
    assert [s["status"] for s in a.get(f"/api/v1/apps/{APP}/slos").json()] == ["violated"]


def test_the_contract_checks_move_with_their_lease_without_recording_again(
    tmp_path: Path,
) -> None:
    """b holds the checks (the contract was applied while it ran alone) and records a
    violation, then stops: a takes the lease over, reads the SLO states b stored, and does
    not record the same episode again."""
    with fresh_postgres() as url:
        stores = {name: Store(url) for name in "ab"}
        clients = {
            name: TestClient(
                create_app(
                    store,
                    ADMIN,
                    data_dir=tmp_path / name,
                    contract_check_s=0,
                    replica=ReplicaOptions(name),
                )
            )
            for name, store in stores.items()
        }
        running: list[TestClient] = []
        try:
            b = clients["b"].__enter__()
            running.append(b)
            reply = b.post(
                "/api/v1/apps",
                json={"name": APP, "owner": "tests", "models": ["linear", "svm"]},
                headers=auth(ADMIN),
            )
            token = reply.json()["token"]
            b.put(f"/api/v1/apps/{APP}/contract", content=CONTRACT, headers=auth(ADMIN))
            a = clients["a"].__enter__()
            running.append(a)
            assert leases_of(a)["contract:b"]["token"] == 1
            b.post(
                f"/api/v1/apps/{APP}/telemetry",
                json={"samples": samples(0, 40)},
                headers=auth(token),
            )
            assert check(b) == ["violated"]
            assert len(violations(b)) == 1
            # b stops cleanly, letting its leases go: a takes the checks over at once
            running.remove(b)
            b.__exit__(None, None, None)
            taken = wait_for(lambda: leases_of(a).get("contract:a"))
            assert taken["here"] and taken["token"] == 2
            assert check(a) == ["violated"]
            assert len(violations(a)) == 1
        finally:
            for client in reversed(running):
                client.__exit__(None, None, None)
            for store in stores.values():
                store.close()


OBSERVERS = """
observers:
  - name: latency
    observer: summary
    service: default
    window: {size: 40}
    every: {samples: 40}
"""


def test_observers_run_once_among_replicas_on_every_replicas_samples(
    two: tuple[TestClient, TestClient],
) -> None:
    """Observers configured on one replica run on the holder of the app's checks' lease
    only, over the samples sent to both: 20 samples to each replica make one run of 40
    (each replica on its own would have run twice on 20, or never, and stored each run
    once per replica)."""
    a, b = two
    token = register(a)
    put = b.put(f"/api/v1/apps/{APP}/observers", content=OBSERVERS, headers=auth(ADMIN))
    assert put.status_code == 201, put.text
    wait_for(lambda: any(k.startswith("contract:") for k in leases_of(a)))

    def runs() -> list[dict[str, Any]]:
        reply = a.get(f"/api/v1/apps/{APP}/observations", headers=auth(ADMIN))
        assert reply.status_code == 200, reply.text
        found: list[dict[str, Any]] = reply.json()
        return found

    for round_ in range(2):
        for client, start in ((a, 0), (b, 20)):
            sent = client.post(
                f"/api/v1/apps/{APP}/telemetry",
                json={"samples": samples(round_ * 40 + start, 20, 10.0 + round_)},
                headers=auth(token),
            )
            assert sent.status_code == 200, sent.text
        wait_for(lambda n=round_ + 1: len(runs()) >= n)  # type: ignore[misc]
    time.sleep(1.5)  # a run stored twice (once a replica) would show by now
    found = runs()
    assert [r["size"] for r in found] == [40, 40], found
    assert all(r["error"] is None for r in found)
