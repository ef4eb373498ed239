"""The registry of models and datasets through the HTTP API: streamed uploads and downloads
with their sha256, a corrupted artifact detected, ``latest`` and aliases with their history,
promotion with its approval, grants between domains, energy from training to serving, size
limits, and HX-MLOps's routes with their payloads."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from test_server_api import auth, samples

from harmonia.compat.hxmlops.shapes import (
    DatasetCatalogResponse,
    DatasetResponse,
    ModelCatalogResponse,
    ModelResponse,
)
from harmonia.server.app import create_app
from harmonia.server.catalog import DownloadAborted
from harmonia.store import Store, sqlite_url

ADMIN = "admin-secret"
MODELS = "/api/v1/domains/vendor/models"
LIMIT = 64 * 1024
#: HX-MLOps's ModelResponse and DatasetResponse fields, exactly
HX_MODEL_FIELDS = {
    "modelIdentifier",
    "name",
    "version",
    "status",
    "library",
    "libraryVersion",
    "domain",
    "tag",
    "parameters",
    "characteristics",
}
HX_DATASET_FIELDS = {"datasetIdentifier", "name", "version", "dataType", "tag", "parameters"}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    """A server with organisation ``acme``, its domains ``vendor`` and ``operator``, and a
    size limit of 64 KiB per artifact."""
    store = Store(sqlite_url(tmp_path))
    app = create_app(store, ADMIN, data_dir=tmp_path, max_artifact_bytes=LIMIT)
    with TestClient(app) as test_client:
        ok(test_client.post("/api/v1/orgs", json={"name": "acme"}, headers=auth(ADMIN)))
        for name in ("vendor", "operator"):
            body = {"name": name, "org": "acme"}
            ok(test_client.post("/api/v1/domains", json=body, headers=auth(ADMIN)))
        yield test_client
    store.close()


def ok(reply: Any) -> Any:
    assert reply.status_code < 300, reply.text
    return reply.json()


def key(client: TestClient, scope: str, domain: str = "vendor") -> str:
    reply = client.post(
        f"/api/v1/domains/{domain}/keys", json={"scope": scope}, headers=auth(ADMIN)
    )
    return str(ok(reply)["token"])


def push(
    client: TestClient,
    data: bytes,
    *,
    token: str = ADMIN,
    name: str = "lstm",
    kinds: str = "models",
    domain: str = "vendor",
    **metadata: Any,
) -> Any:
    return client.post(
        f"/api/v1/domains/{domain}/{kinds}/{name}/versions",
        files={"file": (f"{name}.bin", data, "application/octet-stream")},
        data={"metadata": json.dumps(metadata)},
        headers=auth(token),
    )


def artifact_path(tmp_path: Path, version: dict[str, Any], client: TestClient) -> Path:
    """Where the local store keeps a version's bytes (read from the catalog)."""
    service = client.app.state.catalog  # type: ignore[attr-defined]
    found = service.catalog.version(version["domain"], version["kind"], version["name"], 1)
    return tmp_path / "artifacts" / str(found.location)


def test_upload_and_download_carry_the_sha256(client: TestClient) -> None:
    data = bytes(range(256)) * 200
    version = ok(push(client, data, label="1.0", tags=["beta"], quality={"r2": 0.91}))
    assert version["version"] == 1
    assert version["sha256"] == hashlib.sha256(data).hexdigest()
    assert version["size"] == len(data)
    assert version["metadata"]["quality"] == {"r2": 0.91}
    reply = client.get(f"{MODELS}/lstm/versions/1/data", headers=auth(ADMIN))
    assert reply.status_code == 200
    assert reply.content == data
    assert reply.headers["x-checksum-sha256"] == hashlib.sha256(data).hexdigest()
    assert reply.headers["content-length"] == str(len(data))
    assert reply.headers["x-harmonia-version"] == "vendor/model/lstm@1"


def test_a_corrupted_artifact_is_detected(client: TestClient, tmp_path: Path) -> None:
    data = b"weights " * 1000
    version = ok(push(client, data))
    stored = artifact_path(tmp_path, version, client)
    assert stored.read_bytes() == data
    stored.write_bytes(data.replace(b"weights", b"WEIGHTS", 1))  # same size, other bytes
    # the stream stops before its last chunk; in-process, the server's error surfaces here
    with pytest.raises(DownloadAborted, match="damaged artifact"):
        client.get(f"{MODELS}/lstm/versions/latest/data", headers=auth(ADMIN))
    reply = client.post(f"{MODELS}/lstm/versions/1/verify", headers=auth(ADMIN))
    assert reply.status_code == 500
    assert "damaged artifact" in reply.json()["detail"]


def test_latest_resolves_and_aliases_keep_their_history(client: TestClient) -> None:
    writer = key(client, "write")
    for i in range(3):
        ok(push(client, f"v{i}".encode(), token=writer, label=f"1.{i}"))
    assert ok(client.get(f"{MODELS}/lstm/versions/latest", headers=auth(writer)))["version"] == 3
    assert ok(client.get(f"{MODELS}/lstm/versions/1.1", headers=auth(writer)))["version"] == 2
    ok(client.put(f"{MODELS}/lstm/aliases/staging", json={"version": 2}, headers=auth(writer)))
    body = {"version": 3, "reason": "better r2"}
    ok(client.put(f"{MODELS}/lstm/aliases/staging", json=body, headers=auth(writer)))
    staged = ok(client.get(f"{MODELS}/lstm/versions/staging", headers=auth(writer)))
    assert (staged["version"], staged["status"], staged["aliases"]) == (3, "staging", ["staging"])
    aliases = ok(client.get(f"{MODELS}/lstm/aliases", headers=auth(writer)))
    assert aliases["aliases"] == {"staging": 3}
    moves = [(m["from_version"], m["to_version"], m["reason"]) for m in aliases["history"]]
    assert moves == [(None, 2, ""), (2, 3, "better r2")]
    assert {m["moved_by"] for m in aliases["history"]} == {f"key:{writer.split('_')[1]}"}
    # production moves only by promotion; the label of a version is unique
    refused = client.put(f"{MODELS}/lstm/aliases/production", json=body, headers=auth(ADMIN))
    assert refused.status_code == 422
    assert "promotion" in refused.text
    assert push(client, b"again", label="1.0").status_code == 409


def test_promotion_needs_admin_and_records_the_approval(client: TestClient) -> None:
    writer, admin = key(client, "write"), key(client, "admin")
    ok(push(client, b"v1"))
    ok(push(client, b"v2"))
    ok(client.put(f"{MODELS}/lstm/aliases/staging", json={"version": 2}, headers=auth(writer)))
    note = {"note": "r2 0.93 on last week's traffic"}
    denied = client.post(f"{MODELS}/lstm/promote", json=note, headers=auth(writer))
    assert denied.status_code == 403
    assert "scope 'admin'" in denied.json()["detail"]
    wrong = client.post(f"{MODELS}/lstm/promote", json={"version": 1}, headers=auth(admin))
    assert wrong.status_code == 409  # what the approver looked at is not what is staged
    promoted = ok(client.post(f"{MODELS}/lstm/promote", json=note, headers=auth(admin)))
    approver = f"key:{admin.split('_')[1]}"
    assert promoted["approval"]["approver"] == approver
    assert promoted["approval"]["note"] == note["note"]
    assert promoted["move"] == {**promoted["move"], "alias": "production", "to_version": 2}
    assert promoted["move"]["approval_id"] == promoted["approval"]["id"]
    production = ok(client.get(f"{MODELS}/lstm/versions/production", headers=auth(writer)))
    assert (production["version"], production["status"]) == (2, "production")
    [approval] = ok(client.get(f"{MODELS}/lstm/approvals", headers=auth(writer)))
    assert approval["version"] == 2
    audit = ok(client.get("/api/v1/audit?domain=vendor", headers=auth(ADMIN)))
    outcomes = {(e["action"], e["outcome"]) for e in audit}
    assert {("model.promote", "denied"), ("model.promote", "ok")} <= outcomes


def test_another_domain_reads_only_with_a_grant(client: TestClient) -> None:
    ok(push(client, b"shared weights"))
    reader = key(client, "read", domain="operator")
    version = f"{MODELS}/lstm/versions/latest"
    assert client.get(version, headers=auth(reader)).status_code == 403
    assert client.get(f"{version}/data", headers=auth(reader)).status_code == 403
    assert ok(client.get("/api/v1/catalog", headers=auth(reader))) == []
    operator_admin = key(client, "admin", domain="operator")
    # only the owner's admins share it
    assert (
        client.put(f"{MODELS}/lstm/grants/operator", headers=auth(operator_admin)).status_code
        == 403
    )
    ok(client.put(f"{MODELS}/lstm/grants/operator", headers=auth(key(client, "admin"))))
    assert client.get(f"{version}/data", headers=auth(reader)).content == b"shared weights"
    assert [v["name"] for v in ok(client.get("/api/v1/catalog", headers=auth(reader)))] == ["lstm"]
    # a grant is to read: the operator cannot write to the vendor's model
    assert push(client, b"x", token=operator_admin).status_code == 403
    ok(client.delete(f"{MODELS}/lstm/grants/operator", headers=auth(ADMIN)))
    assert client.get(version, headers=auth(reader)).status_code == 403


def test_a_read_key_cannot_upload(client: TestClient) -> None:
    reply = push(client, b"x", token=key(client, "read"))
    assert reply.status_code == 403
    assert "scope 'write' on domain 'vendor'" in reply.json()["detail"]


def test_lineage_names_the_dataset_and_the_model_it_came_from(client: TestClient) -> None:
    schema = {"columns": {"flow": "float", "ts": "datetime"}}
    ok(push(client, b"ts,flow\n", name="flows", kinds="datasets", data_schema=schema))
    ok(push(client, b"v1", trained_on="flows@latest"))
    second = ok(push(client, b"v2", trained_on="vendor/flows@1", retrained_from="lstm@1"))
    assert second["trained_on"] == "vendor/dataset/flows@1"
    assert second["retrained_from"] == "vendor/model/lstm@1"
    dataset = ok(
        client.get("/api/v1/domains/vendor/datasets/flows/versions/1", headers=auth(ADMIN))
    )
    assert dataset["metadata"]["data_schema"] == schema
    missing = push(client, b"v3", trained_on="flows@9")
    assert missing.status_code == 404


def test_uploads_over_the_limit_are_refused_with_413(client: TestClient, tmp_path: Path) -> None:
    declared = push(client, b"x" * (2 * 1024 * 1024))  # the body's length says it at once
    assert declared.status_code == 413
    assert "request body over" in declared.json()["detail"]

    def chunked() -> Iterator[bytes]:  # no length: refused as the bytes pass the limit
        boundary = b"--harmonia"
        yield boundary + b'\r\nContent-Disposition: form-data; name="file"; filename="m"\r\n\r\n'
        for _ in range(40):
            yield b"y" * 4096
        yield b"\r\n" + boundary + b"--\r\n"

    streamed = client.post(
        f"{MODELS}/lstm/versions",
        content=chunked(),
        headers={**auth(ADMIN), "Content-Type": "multipart/form-data; boundary=harmonia"},
    )
    assert streamed.status_code == 413
    assert streamed.json()["detail"] == (
        f"the artifact is over the limit of {LIMIT} bytes; nothing was stored"
    )
    kept = [p for p in (tmp_path / "artifacts").rglob("*") if p.is_file()]
    assert kept == []
    assert client.get(f"{MODELS}/lstm", headers=auth(ADMIN)).status_code == 404


def test_energy_from_training_to_serving(client: TestClient) -> None:
    ok(push(client, b"lstm v1"))
    body = {"phase": "training", "joules": 1200.0, "seconds": 60.0, "source": "rapl"}
    ok(client.post(f"{MODELS}/lstm/versions/1/energy", json=body, headers=auth(ADMIN)))
    body = {"phase": "evaluation", "joules": 35.5, "seconds": 2.0}
    energy = ok(client.post(f"{MODELS}/lstm/versions/1/energy", json=body, headers=auth(ADMIN)))
    assert (energy["training_j"], energy["evaluation_j"]) == (1200.0, 35.5)
    assert [r["source"] for r in energy["runs"]] == ["rapl", "reported"]
    # an app of the operator's domain serves lstm v1 (shared to it) and reports its energy
    ok(client.put(f"{MODELS}/lstm/grants/operator", headers=auth(ADMIN)))
    app = {"name": "traffic", "owner": "team", "models": ["lstm"], "domain": "operator"}
    token = ok(client.post("/api/v1/apps", json=app, headers=auth(ADMIN)))["token"]
    batch = samples("lstm", 20, 0.9, energy_j=0.004)
    ok(client.post("/api/v1/apps/traffic/telemetry", json={"samples": batch}, headers=auth(token)))
    energy = ok(client.get(f"{MODELS}/lstm/versions/1/energy", headers=auth(ADMIN)))
    [serving] = energy["serving"]
    assert serving["domain"] == "operator"
    assert serving["samples"] == 20
    assert serving["joules_per_inference"] == pytest.approx(0.004)


def test_hxmlops_model_routes_answer_with_their_shapes(client: TestClient) -> None:
    writer = key(client, "write")
    form = {
        "name": "test_model",
        "version": "1.0",
        "status": "training",
        "library": "sklearn",
        "libraryVersion": "0.24",
        "domain": "vendor",
        "tag": "beta",
        "parameters": json.dumps({"param1": "value1"}),
        "characteristics": json.dumps({"accuracy": "0.86"}),
    }
    files = {"file": ("model.pkl", b"dummy model content", "application/octet-stream")}
    added = ok(client.post("/api/v1/model", data=form, files=files, headers=auth(writer)))
    assert set(added) == HX_MODEL_FIELDS
    ModelResponse.model_validate(added)
    assert (added["version"], added["status"], added["tag"]) == ("1.0", "training", "beta")
    model_id = added["modelIdentifier"]
    form2 = {**form, "version": "1.1", "status": "staging"}
    ok(client.post("/api/v1/model", data=form2, files=files, headers=auth(writer)))

    # version=latest resolves (HX-MLOps compared it literally); a label names a version
    info = ok(client.get(f"/api/v1/model/{model_id}/data", headers=auth(writer)))
    assert (info["version"], info["status"]) == ("1.1", "staging")
    first = client.get(f"/api/v1/model/by_id/{model_id}?version=1.0", headers=auth(writer))
    assert first.content == b"dummy model content"
    assert first.headers["content-type"] == "application/octet-stream"

    catalog = client.get("/api/v1/model_catalog?tag=beta&domain=vendor", headers=auth(writer))
    assert catalog.status_code == 404  # status defaults to production, as HX-MLOps's does
    staged = ok(client.get("/api/v1/model_catalog?status=staging", headers=auth(writer)))
    ModelCatalogResponse.model_validate(staged)
    assert [m["version"] for m in staged["models"]] == ["1.1"]

    # status production at upload is a promotion: it needs admin, and records the approval
    form3 = {**form, "version": "2.0", "status": "production"}
    denied = client.post("/api/v1/model", data=form3, files=files, headers=auth(writer))
    assert denied.status_code == 403
    admin = key(client, "admin")
    promoted = ok(client.post("/api/v1/model", data=form3, files=files, headers=auth(admin)))
    assert promoted["status"] == "production"
    approvals = ok(client.get(f"{MODELS}/test_model/approvals", headers=auth(admin)))
    assert approvals[0]["approver"] == f"key:{admin.split('_')[1]}"

    deleted = ok(client.delete(f"/api/v1/model/{model_id}?version=1.0", headers=auth(writer)))
    assert deleted["version"] == "1.0"
    gone = client.get(f"/api/v1/model/{model_id}/data?version=1.0", headers=auth(writer))
    assert gone.status_code == 404
    # behind Harmonia's keys: no token, no model
    assert client.get(f"/api/v1/model/{model_id}/data").status_code == 401


def test_hxmlops_dataset_routes_answer_with_their_shapes(client: TestClient) -> None:
    writer = key(client, "write")
    form = {
        "name": "ispm_dataset",
        "version": "1.0.0",
        "dataType": "mixed",
        "tag": "timeseries",
        "parameters": json.dumps({"row_number": "5000"}),
    }
    files = {
        "dataModelFile": ("model.json", b'{"columns": ["date", "node_1"]}'),
        "datasetFile": ("data.csv", b"date,node_1\n2024-01-01,3\n"),
    }
    added = ok(client.post("/api/v1/dataset", data=form, files=files, headers=auth(writer)))
    assert set(added) == HX_DATASET_FIELDS
    DatasetResponse.model_validate(added)
    dataset_id = added["datasetIdentifier"]
    reply = client.get(f"/api/v1/dataset/by_id/{dataset_id}", headers=auth(writer))
    assert reply.headers["content-type"] == "application/zip"
    assert "ispm_dataset_1.0.0_files.zip" in reply.headers["content-disposition"]
    archive = zipfile.ZipFile(io.BytesIO(reply.content))
    assert sorted(archive.namelist()) == ["dataModel", "dataset"]
    assert archive.read("dataset") == b"date,node_1\n2024-01-01,3\n"
    info = ok(client.get(f"/api/v1/dataset/{dataset_id}/data", headers=auth(writer)))
    assert (info["dataType"], info["version"]) == ("mixed", "1.0.0")
    catalog = ok(client.get("/api/v1/dataset_catalog?dataType=mixed", headers=auth(writer)))
    DatasetCatalogResponse.model_validate(catalog)
    assert [d["name"] for d in catalog["datasets"]] == ["ispm_dataset"]
    none = client.get("/api/v1/dataset_catalog?dataType=synthetic", headers=auth(writer))
    assert none.status_code == 404
    one_file = {"datasetFile": files["datasetFile"]}
    missing = client.post("/api/v1/dataset", data=form, files=one_file, headers=auth(writer))
    assert missing.status_code == 422
    assert missing.json()["detail"][0]["field"] == "dataModelFile"
    ok(client.delete(f"/api/v1/dataset/{dataset_id}?version=latest", headers=auth(writer)))
