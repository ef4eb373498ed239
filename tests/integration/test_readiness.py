"""``/healthz`` (alive) and ``/readyz`` (database reachable, migrations current), on SQLite
and on PostgreSQL: what the Kubernetes probes of Harmonia's own Deployment call."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from databases import BACKENDS, database
from fastapi.testclient import TestClient
from sqlalchemy import create_engine

from harmonia.server.app import create_app
from harmonia.store import Store
from harmonia.store.base import head_revisions, known_revisions

ADMIN = "readiness-admin"


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with database(request.param, tmp_path) as url:
        opened = Store(url)
        try:
            yield opened
        finally:
            opened.close()


@pytest.fixture
def client(store: Store) -> Iterator[TestClient]:
    with TestClient(create_app(store, ADMIN)) as test_client:
        yield test_client


def _stamp(url: str, revision: str) -> None:
    """Say in ``alembic_version`` that the database is at ``revision`` (as a database that an
    older Harmonia migrated, or a newer one, would say)."""
    config = Config()
    config.set_main_option("script_location", str(resources.files("harmonia.store") / "migrations"))
    engine = create_engine(url)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.stamp(config, revision, purge=True)
    engine.dispose()


def _previous(revision: str) -> str:
    return f"{int(revision) - 1:04d}"


def test_healthz_answers_without_a_token(client: TestClient) -> None:
    reply = client.get("/healthz")
    assert reply.status_code == 200
    assert reply.json() == {"status": "ok"}


def test_readyz_is_ready_at_the_head_migration(client: TestClient) -> None:
    reply = client.get("/readyz")
    assert reply.status_code == 200, reply.text
    body = reply.json()
    head = list(head_revisions())
    assert body["status"] == "ready" and body["detail"] == "ready"
    assert body["database"] == {"ok": True, "detail": "reachable"}
    assert body["migrations"]["ok"] is True
    assert body["migrations"]["current"] == body["migrations"]["head"] == head


def test_readyz_is_503_naming_an_old_migration(client: TestClient, store: Store) -> None:
    (head,) = head_revisions()
    old = _previous(head)
    _stamp(store.url, old)

    reply = client.get("/readyz")

    assert reply.status_code == 503
    body = reply.json()
    assert body["status"] == "not ready"
    assert body["detail"] == f"migrations not current (at {old}, head {head})"
    assert body["database"]["ok"] is True
    assert body["migrations"] == {
        "ok": False,
        "detail": f"migrations not current (at {old}, head {head})",
        "current": [old],
        "head": [head],
    }
    # alive all the same: the liveness probe must not restart a replica for this
    assert client.get("/healthz").status_code == 200


def test_readyz_names_a_revision_newer_than_this_version(client: TestClient, store: Store) -> None:
    """A newer replica migrated during a rolling update: this one is not ready, and says so."""
    (head,) = head_revisions()
    with create_engine(store.url).begin() as connection:
        connection.exec_driver_sql(f"UPDATE alembic_version SET version_num = '{head}-next'")
    assert f"{head}-next" not in known_revisions()

    reply = client.get("/readyz")

    assert reply.status_code == 503
    detail = reply.json()["detail"]
    assert detail == (
        f"migrations not current (at {head}-next, head {head}; {head}-next unknown to this "
        "version (a newer one migrated))"
    )


def test_readyz_is_503_on_a_database_never_migrated(client: TestClient, store: Store) -> None:
    with create_engine(store.url).begin() as connection:
        connection.exec_driver_sql("DELETE FROM alembic_version")
    reply = client.get("/readyz")
    assert reply.status_code == 503
    (head,) = head_revisions()
    assert reply.json()["detail"] == f"migrations not current (at none, head {head})"


def _unreachable_url(url: str, tmp_path: Path) -> str:
    """A URL of the same backend where no database answers."""
    if url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'gone' / 'harmonia.db'}"  # a folder that is not there
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/harmonia"


def test_readyz_is_503_when_the_database_is_unreachable(
    client: TestClient, store: Store, tmp_path: Path
) -> None:
    reachable = store.engine
    store.engine = create_engine(_unreachable_url(store.url, tmp_path))
    try:
        reply = client.get("/readyz")
        alive = client.get("/healthz")
    finally:
        store.engine.dispose()
        store.engine = reachable

    assert reply.status_code == 503
    body = reply.json()
    assert body["status"] == "not ready"
    assert body["detail"].startswith("database unreachable: ")
    assert body["database"]["ok"] is False
    assert body["migrations"]["ok"] is False
    assert body["migrations"]["detail"] == "not checked: the database is unreachable"
    assert alive.status_code == 200
    assert client.get("/readyz").status_code == 200  # reachable again: ready again


def test_the_openapi_documents_readyz_and_its_503(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    assert "/healthz" in document["paths"]
    responses = document["paths"]["/readyz"]["get"]["responses"]
    ready = {"$ref": "#/components/schemas/ReadyOut"}
    assert responses["200"]["content"]["application/json"]["schema"] == ready
    assert responses["503"]["content"]["application/json"]["schema"] == ready
    assert "not at the newest migration" in responses["503"]["description"]
