"""Organisations, domains, keys and the audit log through the HTTP API, on SQLite and on
PostgreSQL: every write authorised by scope, keys that stop working when revoked or rotated,
and an audit entry for every write, done or refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from databases import BACKENDS, database
from fastapi.testclient import TestClient
from test_server_api import POLICY, auth, samples

from harmonia.server.app import create_app
from harmonia.store import Store

ADMIN = "admin-secret"
KEYS = "/api/v1/domains/vendor/keys"


@pytest.fixture(params=BACKENDS)
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestClient]:
    """A server with organisation ``acme`` and its domains ``vendor`` and ``operator``."""
    with database(request.param, tmp_path) as url:
        store = Store(url)
        try:
            with TestClient(create_app(store, ADMIN, data_dir=tmp_path)) as test_client:
                _ok(test_client.post("/api/v1/orgs", json={"name": "acme"}, headers=auth(ADMIN)))
                for name in ("vendor", "operator"):
                    body = {"name": name, "org": "acme"}
                    _ok(test_client.post("/api/v1/domains", json=body, headers=auth(ADMIN)))
                yield test_client
        finally:
            store.close()


def _ok(reply: Any) -> Any:
    assert reply.status_code < 300, reply.text
    return reply.json()


def key(client: TestClient, scope: str, domain: str = "vendor", token: str = ADMIN) -> str:
    reply = client.post(
        f"/api/v1/domains/{domain}/keys", json={"scope": scope}, headers=auth(token)
    )
    return str(_ok(reply)["token"])


def register(client: TestClient, token: str, name: str = "traffic", **extra: Any) -> Any:
    body = {"name": name, "owner": "team", "models": ["linear", "svm", "lstm"], **extra}
    return client.post("/api/v1/apps", json=body, headers=auth(token))


def test_a_read_key_cannot_write(client: TestClient) -> None:
    reader = key(client, "read")
    reply = register(client, reader, domain="vendor")
    assert reply.status_code == 403
    assert "needs scope 'write' on domain 'vendor'" in reply.json()["detail"]
    reply = client.post(KEYS, json={"scope": "read"}, headers=auth(reader))
    assert reply.status_code == 403 and "'admin'" in reply.json()["detail"]

    writer = key(client, "write")
    assert register(client, writer, domain="vendor").status_code == 201
    # the app's routes: the write key writes, the read key reads the export only
    telemetry = {"samples": samples("lstm", 5, 0.9)}
    path = "/api/v1/apps/traffic/telemetry"
    assert client.post(path, json=telemetry, headers=auth(writer)).status_code == 200
    reply = client.post(path, json=telemetry, headers=auth(reader))
    assert reply.status_code == 403 and "'write'" in reply.json()["detail"]
    reply = client.put("/api/v1/apps/traffic/policy", content=POLICY, headers=auth(reader))
    assert reply.status_code == 403
    export = client.get("/api/v1/apps/traffic/telemetry.csv", headers=auth(reader))
    assert export.status_code == 200 and export.text.count("\n") == 6


def test_a_key_of_another_domain_cannot_read(client: TestClient) -> None:
    assert register(client, ADMIN, domain="vendor").status_code == 201
    outsider = key(client, "admin", domain="operator")
    export = client.get("/api/v1/apps/traffic/telemetry.csv", headers=auth(outsider))
    assert export.status_code == 403 and "domain 'vendor'" in export.json()["detail"]
    for path in ("/api/v1/domains/vendor/check", KEYS, "/api/v1/audit?domain=vendor"):
        assert client.get(path, headers=auth(outsider)).status_code == 403, path
    # whether a domain exists is not told to a key that holds no scope on it
    assert client.get("/api/v1/domains/nowhere/check", headers=auth(outsider)).status_code == 403
    assert [d["name"] for d in _ok(client.get("/api/v1/domains", headers=auth(outsider)))] == [
        "operator"
    ]
    # nor can its admin reach the other domain's keys by id
    vendor_key = key(client, "read")
    key_id = vendor_key.split("_")[1]
    reply = client.delete(f"/api/v1/domains/operator/keys/{key_id}", headers=auth(outsider))
    assert reply.status_code == 404


def test_revoked_and_rotated_keys_stop_working(client: TestClient) -> None:
    manager = key(client, "admin")
    writer = _ok(client.post(KEYS, json={"scope": "write", "name": "ci"}, headers=auth(manager)))
    old_token, key_id = writer["token"], writer["id"]
    assert register(client, old_token, domain="vendor").status_code == 201

    rotated = _ok(client.post(f"{KEYS}/{key_id}/rotate", headers=auth(manager)))
    assert (rotated["id"], rotated["scope"]) == (key_id, "write")
    assert rotated["token"] != old_token and rotated["rotated"] is not None
    assert register(client, old_token, "vision", domain="vendor").status_code == 401
    assert register(client, rotated["token"], "vision", domain="vendor").status_code == 201

    revoked = _ok(client.delete(f"{KEYS}/{key_id}", headers=auth(manager)))
    assert revoked["revoked"] is not None
    assert register(client, rotated["token"], "other", domain="vendor").status_code == 401
    assert client.delete(f"{KEYS}/{key_id}", headers=auth(manager)).status_code == 409
    listed = _ok(client.get(KEYS, headers=auth(manager)))
    assert {k["id"]: k["revoked"] is not None for k in listed}[key_id] is True
    assert all("token" not in k for k in listed)


def test_a_key_may_expire(client: TestClient) -> None:
    body = {"scope": "write", "expires_in_s": 3600}
    created = _ok(client.post(KEYS, json=body, headers=auth(ADMIN)))
    assert created["expires"] == pytest.approx(created["created"] + 3600)
    bad = client.post(KEYS, json={"scope": "write", "expires_in_s": -1}, headers=auth(ADMIN))
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "expires_in_s"


def test_audit_entries_are_written_for_each_write(client: TestClient) -> None:
    manager = key(client, "admin")
    manager_id = manager.split("_")[1]
    reader = key(client, "read", token=manager)
    assert register(client, reader, domain="vendor").status_code == 403  # denied
    assert register(client, ADMIN, domain="vendor").status_code == 201
    assert register(client, ADMIN, domain="vendor").status_code == 409  # failed: name taken
    reader_id = reader.split("_")[1]
    _ok(client.post(f"{KEYS}/{reader_id}/rotate", headers=auth(manager)))
    _ok(client.delete(f"{KEYS}/{reader_id}", headers=auth(manager)))

    log = _ok(client.get("/api/v1/audit?domain=vendor&limit=50", headers=auth(manager)))
    seen = [(e["principal"], e["action"], e["resource"], e["outcome"]) for e in reversed(log)]
    assert seen == [
        ("admin", "domain.create", "domain:vendor", "ok"),
        ("admin", "key.create", f"key:{manager_id}", "ok"),
        (f"key:{manager_id}", "key.create", f"key:{reader_id}", "ok"),
        (f"key:{reader_id}", "app.register", "app:traffic", "denied"),
        ("admin", "app.register", "app:traffic", "ok"),
        ("admin", "app.register", "app:traffic", "failed"),
        (f"key:{manager_id}", "key.rotate", f"key:{reader_id}", "ok"),
        (f"key:{manager_id}", "key.revoke", f"key:{reader_id}", "ok"),
    ]
    assert all(e["domain"] == "vendor" for e in log) and log[0]["ts"] >= log[-1]["ts"]
    # the whole log is the admin's; a domain's is its admins'
    assert client.get("/api/v1/audit", headers=auth(manager)).status_code == 403
    everything = _ok(client.get("/api/v1/audit", headers=auth(ADMIN)))
    assert ("admin", "org.create") in {(e["principal"], e["action"]) for e in everything}
    refused = client.post("/api/v1/orgs", json={"name": "evil"}, headers=auth(manager))
    assert refused.status_code == 403
    everything = _ok(client.get("/api/v1/audit", headers=auth(ADMIN)))
    assert (everything[0]["action"], everything[0]["outcome"]) == ("org.create", "denied")


def test_apps_without_a_domain_belong_to_the_default_one(client: TestClient) -> None:
    reply = register(client, ADMIN)
    assert reply.status_code == 201 and reply.json()["domain"] == "default"
    assert _ok(client.get("/api/v1/apps/traffic"))["domain"] == "default"
    reply = register(client, ADMIN, "vision", domain="nowhere")
    assert reply.status_code == 422 and reply.json()["detail"][0]["field"] == "domain"
    # a key of the default domain writes to its apps
    default_writer = key(client, "write", domain="default")
    body = {"samples": samples("lstm", 3, 0.9)}
    path = "/api/v1/apps/traffic/telemetry"
    assert client.post(path, json=body, headers=auth(default_writer)).status_code == 200


def test_orgs_and_domains_are_created_by_the_admin_only(client: TestClient) -> None:
    manager = key(client, "admin")
    domain = {"name": "operator-production", "org": "acme"}
    assert client.post("/api/v1/domains", json=domain, headers=auth(manager)).status_code == 403
    assert client.post("/api/v1/domains", json=domain).status_code == 401
    body = {**domain, "target": {"context": "prod", "namespace": "ml"}}
    created = _ok(client.post("/api/v1/domains", json=body, headers=auth(ADMIN)))
    assert created["target"] == {"context": "prod", "namespace": "ml"}
    again = client.post("/api/v1/domains", json=body, headers=auth(ADMIN))
    assert again.status_code == 409
    orphan = {"name": "x", "org": "nobody"}
    assert client.post("/api/v1/domains", json=orphan, headers=auth(ADMIN)).status_code == 404
    bad = client.post("/api/v1/orgs", json={"name": "Bad Name"}, headers=auth(ADMIN))
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "name"
    assert [o["name"] for o in _ok(client.get("/api/v1/orgs", headers=auth(manager)))] == ["acme"]
    names = {o["name"] for o in _ok(client.get("/api/v1/orgs", headers=auth(ADMIN)))}
    assert names == {"acme", "default"}


def test_domains_check_without_a_cluster_says_so(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    reader = key(client, "read")
    reply = _ok(client.get("/api/v1/domains/vendor/check", headers=auth(reader)))
    assert reply["reachable"] is False and "no deployment target" in reply["detail"]

    body = {"name": "staging", "org": "acme", "target": {"context": "kind", "namespace": "ml"}}
    _ok(client.post("/api/v1/domains", json=body, headers=auth(ADMIN)))
    reply = _ok(client.get("/api/v1/domains/staging/check", headers=auth(ADMIN)))
    assert reply["reachable"] is False and reply["detail"].startswith("no cluster:")
    assert reply["target"] == {"context": "kind", "namespace": "ml"}


def test_the_existing_tokens_keep_working(client: TestClient) -> None:
    """The admin token and the app's own token, as before domains."""
    token = register(client, ADMIN).json()["token"]
    body = {"samples": samples("lstm", 3, 0.9)}
    assert client.post("/api/v1/apps/traffic/telemetry", json=body, headers=auth(token)).is_success
    assert client.post("/api/v1/apps/traffic/telemetry", json=body, headers=auth(ADMIN)).is_success
    # an app's token is no key: it reaches no domain route
    assert client.get("/api/v1/domains", headers=auth(token)).status_code == 401
