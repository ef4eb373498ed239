"""The store on SQLite and on PostgreSQL: the same tests, the same behaviour."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from databases import POSTGRES_ADMIN, require_postgres
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError

from harmonia.store import Conflict, NotFound, Store, StoreError, sqlite_url
from harmonia.store.tables import Base

POSTGRES = POSTGRES_ADMIN


def _reset_postgres() -> None:
    """Drop every table of the schema (and Alembic's record), whatever the migrations made."""
    engine = create_engine(POSTGRES)
    Base.metadata.drop_all(engine)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS alembic_version"))


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        instance = Store(sqlite_url(tmp_path))
    else:
        require_postgres()
        _reset_postgres()
        instance = Store(POSTGRES)
    yield instance
    instance.close()


def row(i: int, **extra: object) -> dict:
    return {
        "instance": "i-1",
        "service": "forecast",
        "model": "linear",
        "model_version": 1,
        "ts": float(i),
        "latency_ms": 0.1,
        "energy_j": 1e-5,
        "energy_source": "estimate",
        "prediction": 1.0,
        "target": 1.5,
        "drift_value": 1.5,
        "metrics": {"confidence": 0.9},
        **extra,
    }


def test_register_and_read_apps(store: Store) -> None:
    app, token = store.create_app("traffic", "team", ["linear", "lstm"], [{"name": "forecast"}])
    assert app.name == "traffic" and app.models == ["linear", "lstm"]
    assert store.check_token("traffic", token)
    assert not store.check_token("traffic", "wrong")
    assert [a.name for a in store.apps()] == ["traffic"]
    with pytest.raises(Conflict):
        store.create_app("traffic", "other", ["x"])
    with pytest.raises(StoreError, match="lowercase"):
        store.create_app("../etc", "x", ["m"])
    with pytest.raises(NotFound):
        store.app("nope")


def test_policies_are_versioned(store: Store) -> None:
    app, _ = store.create_app("traffic", "team", ["linear"])
    assert store.policy(app) is None
    assert store.add_policy(app, {"policy": "a"}).version == 1
    assert store.add_policy(app, {"policy": "b"}).version == 2
    assert store.policy(app).document == {"policy": "b"}  # type: ignore[union-attr]
    assert store.policy(app, 1).document == {"policy": "a"}  # type: ignore[union-attr]


def test_telemetry_batches_are_stored_whole(store: Store) -> None:
    app, _ = store.create_app("traffic", "team", ["linear"])
    assert store.insert_telemetry(app, [row(i) for i in range(500)]) == 500
    bad = [row(i) for i in range(10)] + [row(10, model=None)]  # violates NOT NULL
    with pytest.raises(IntegrityError):
        store.insert_telemetry(app, bad)
    assert store.count_telemetry(app) == 500  # nothing of the bad batch went in
    exported = list(store.telemetry(app, start=100.0, end=110.0))
    assert [r["ts"] for r in exported] == [float(i) for i in range(100, 110)]
    assert exported[0]["metrics"] == {"confidence": 0.9}


def test_action_lifecycle(store: Store) -> None:
    app, _ = store.create_app("traffic", "team", ["linear", "svm"])
    base = {
        "ts": 1.0,
        "strategy": "switch",
        "reason": "r",
        "trigger": "t",
        "values": {"x": 1.0},
        "context": {},
    }
    switch, none = store.add_actions(
        app,
        [
            {"kind": "switch_model", "model": "svm", "version": None, **base},
            {"kind": "none", "model": None, "version": None, **base},
        ],
    )
    assert (switch.status, none.status) == ("pending", "applied")
    [delivered] = store.deliver_pending(app)
    assert delivered.id == switch.id and delivered.status == "delivered"
    assert store.deliver_pending(app) == []  # delivered once
    finished = store.finish_action(app, switch.id, "applied", "switched")
    assert finished.status == "applied" and finished.finished_at is not None
    with pytest.raises(Conflict):
        store.finish_action(app, switch.id, "failed")
    with pytest.raises(NotFound):
        store.finish_action(app, 999, "applied")
    assert [a.id for a in store.actions(app, "applied")] == [none.id, switch.id]  # newest first


def test_migrations_are_idempotent(store: Store) -> None:
    app, _ = store.create_app("traffic", "team", ["linear"])
    store.migrate()
    assert store.app("traffic") == app


def test_windows_and_versions_round_trip(store: Store) -> None:
    app, _ = store.create_app("traffic", "team", ["linear", "lstm"])
    window = {"start": 0.0, "end": 9.0, "model": "linear", "version": 1, "count": 10}
    store.ingest(
        app,
        [row(i) for i in range(10)],
        [],
        pull=True,
        windows=[{**window, "signals": {"quality": 0.5, "r2": None}}],
    )
    [stored] = store.windows(app)
    assert stored == {**window, "signals": {"quality": 0.5, "r2": None}}
    assert store.windows(app, start=10.0) == []
    store.put_version(app, "lstm", 2, fingerprint=[0.0, 1.0], details={"r2": 0.9}, created=5.0)
    store.put_version(app, "lstm", 2, details={"r2": 0.8}, created=6.0)  # replaced
    [version] = store.versions(app)
    assert (version.version, version.created, version.details) == (2, 6.0, {"r2": 0.8})
    with pytest.raises(StoreError, match="cannot serve 'svm'"):
        store.put_version(app, "svm", 1)
