"""The store on SQLite and on PostgreSQL: the same tests, the same behaviour."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from databases import POSTGRES_ADMIN, require_postgres
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError

from harmonia.core.application import Application
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
        "stage": "main",
        "service": "forecast",
        "instance": "i-1",
        "trace_id": None,
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


def single(name: str, models: list[str], services: tuple[str, ...] = ("forecast",)) -> Application:
    return Application.single(name, models, owner="team", services=[{"name": s} for s in services])


PIPELINE = Application.model_validate(
    {
        "name": "detect",
        "owner": "team",
        "stages": [
            {
                "name": "classify",
                "after": ["ingest"],
                "services": [
                    {"name": "small", "models": ["tiny", "mini"]},
                    {"name": "large", "models": ["big"], "effector_url": "http://large:9/"},
                ],
            },
            {"name": "ingest", "services": [{"name": "camera", "models": ["raw"]}]},
            {
                "name": "aggregate",
                "after": ["classify"],
                "services": [{"name": "vote", "models": ["majority"], "instances": ["v-1"]}],
            },
        ],
    }
)


def test_register_and_read_apps(store: Store) -> None:
    app, token = store.create_app(single("traffic", ["linear", "lstm"]))
    assert app.name == "traffic" and app.models == ["linear", "lstm"]
    assert app.services == ("forecast",) and app.structure.stage_of("forecast") == "main"
    assert store.check_token("traffic", token)
    assert not store.check_token("traffic", "wrong")
    assert [a.name for a in store.apps()] == ["traffic"]
    with pytest.raises(Conflict):
        store.create_app(single("traffic", ["x"]))
    with pytest.raises(NotFound):
        store.app("nope")


def test_a_pipeline_is_stored_with_its_structure(store: Store) -> None:
    app, _ = store.create_app(PIPELINE)
    assert [stage.name for stage in app.structure.stages] == ["ingest", "classify", "aggregate"]
    assert app.services == ("camera", "small", "large", "vote")
    assert set(app.stage_ids) == {"ingest", "classify", "aggregate"}
    assert len(set(app.service_ids.values())) == 4
    assert app.effector_url_of("large") == "http://large:9/"
    assert app.effector_url_of("small") is None
    assert store.app("detect") == app
    [declared] = store.instances(app)
    assert (declared.service, declared.name, declared.node) == ("vote", "v-1", None)

    store.register_instance(app, "small", "s-1", node="jetson-1", labels={"gpu": "orin"})
    store.register_instance(app, "large", "l-1", node="jetson-1")  # labels kept
    moved = store.register_instance(app, "vote", "v-1", node="edge-2", labels={})
    assert moved.node == "edge-2"
    by_name = {i.name: i for i in store.instances(app)}
    assert by_name["l-1"].labels == {"gpu": "orin"} and by_name["s-1"].node == "jetson-1"
    with pytest.raises(NotFound, match="camera, small, large, vote"):
        store.register_instance(app, "nope", "x")


def test_policies_are_versioned_per_service(store: Store) -> None:
    app, _ = store.create_app(single("traffic", ["linear"], ("a", "b")))
    assert store.policy(app, "a") is None
    assert store.add_policy(app, "a", {"policy": "a"}).version == 1
    assert store.add_policy(app, "a", {"policy": "b"}).version == 2
    assert store.add_policy(app, "b", {"policy": "c"}).version == 1
    assert store.policy(app, "a").document == {"policy": "b"}  # type: ignore[union-attr]
    assert store.policy(app, "a", 1).document == {"policy": "a"}  # type: ignore[union-attr]
    assert [p.service for p in store.policies(app)] == ["a", "b", "a"]
    assert [p.version for p in store.policies(app, "b")] == [1]


def test_telemetry_batches_are_stored_whole(store: Store) -> None:
    app, _ = store.create_app(single("traffic", ["linear"]))
    assert store.insert_telemetry(app, [row(i) for i in range(500)]) == 500
    bad = [row(i) for i in range(10)] + [row(10, model=None)]  # violates NOT NULL
    with pytest.raises(IntegrityError):
        store.insert_telemetry(app, bad)
    assert store.count_telemetry(app) == 500  # nothing of the bad batch went in
    exported = list(store.telemetry(app, start=100.0, end=110.0))
    assert [r["ts"] for r in exported] == [float(i) for i in range(100, 110)]
    assert exported[0]["metrics"] == {"confidence": 0.9}


def test_action_lifecycle(store: Store) -> None:
    app, _ = store.create_app(single("traffic", ["linear", "svm"]))
    base = {
        "service": "forecast",
        "instance": None,
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
    [delivered] = store.deliver_pending(app, ["forecast"])
    assert delivered.id == switch.id and delivered.status == "delivered"
    assert delivered.message()["service"] == "forecast"
    assert store.deliver_pending(app, ["forecast"]) == []  # delivered once
    finished = store.finish_action(app, switch.id, "applied", "switched")
    assert finished.status == "applied" and finished.finished_at is not None
    with pytest.raises(Conflict):
        store.finish_action(app, switch.id, "failed")
    with pytest.raises(NotFound):
        store.finish_action(app, 999, "applied")
    assert [a.id for a in store.actions(app, "applied")] == [none.id, switch.id]  # newest first


def test_actions_reach_only_the_service_and_instance_they_aim_at(store: Store) -> None:
    app, _ = store.create_app(PIPELINE)
    base = {"ts": 1.0, "strategy": "s", "reason": "r", "trigger": "t", "values": {}}
    small, large, one = store.add_actions(
        app,
        [
            {
                "kind": "switch_model",
                "model": "mini",
                "version": None,
                "service": "small",
                "instance": None,
                "context": {},
                **base,
            },
            {
                "kind": "retrain",
                "model": "big",
                "version": None,
                "service": "large",
                "instance": None,
                "context": {},
                **base,
            },
            {
                "kind": "retrain",
                "model": "tiny",
                "version": None,
                "service": "small",
                "instance": "s-2",
                "context": {},
                **base,
            },
        ],
    )
    assert [a.id for a in store.deliver_pending(app, ["small"], "s-1")] == [small.id]
    assert [a.id for a in store.deliver_pending(app, ["large", "vote"], "l-1")] == [large.id]
    assert [a.id for a in store.deliver_pending(app, ["small"], "s-2")] == [one.id]


def test_migrations_are_idempotent(store: Store) -> None:
    app, _ = store.create_app(single("traffic", ["linear"]))
    store.migrate()
    assert store.app("traffic") == app


def test_windows_and_versions_round_trip(store: Store) -> None:
    app, _ = store.create_app(single("traffic", ["linear", "lstm"]))
    window = {
        "service": "forecast",
        "start": 0.0,
        "end": 9.0,
        "model": "linear",
        "version": 1,
        "count": 10,
    }
    store.ingest(
        app,
        [row(i) for i in range(10)],
        [],
        pull=["forecast"],
        windows=[{**window, "signals": {"quality": 0.5, "r2": None}}],
    )
    [stored] = store.windows(app)
    assert stored == {**window, "signals": {"quality": 0.5, "r2": None}}
    assert store.windows(app, start=10.0) == []
    put = store.put_version
    put(app, "forecast", "lstm", 2, fingerprint=[0.0, 1.0], metadata={"r2": 0.9}, created=5.0)
    put(app, "forecast", "lstm", 2, metadata={"r2": 0.8}, created=6.0)  # replaced
    [version] = store.versions(app)
    assert (version.version, version.created, version.metadata) == (2, 6.0, {"r2": 0.8})
    with pytest.raises(StoreError, match="cannot serve 'svm'"):
        put(app, "forecast", "svm", 1)


def test_the_latest_samples_of_a_span_can_be_read_alone(store: Store) -> None:
    app, _ = store.create_app(single("traffic", ["linear"]))
    store.insert_telemetry(app, [row(i) for i in range(100)])
    latest = list(store.telemetry(app, start=10.0, end=90.0, latest=5))
    assert [r["ts"] for r in latest] == [89.0, 88.0, 87.0, 86.0, 85.0]
    assert latest[0]["stage"] == "main"
