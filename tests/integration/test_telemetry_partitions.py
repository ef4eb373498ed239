"""Telemetry on PostgreSQL: binary COPY inside the batch's transaction, a partition a day made
ahead and on demand, a default partition for the rest, retention by dropping days (deleting
rows on SQLite), and migration 0013 moving stored samples into the partitions."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from databases import BACKENDS, database, fresh_postgres
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import IntegrityError

from harmonia.core.application import Application
from harmonia.store import Conflict, Store
from harmonia.store import telemetry as telemetry_module
from harmonia.store.telemetry import PARTITION_SECONDS, partition_name

DAY = PARTITION_SECONDS
#: 2024-01-01 00:00 UTC, day 19,723
JAN_1 = 19_723 * DAY


def sample(ts: float, **extra: object) -> dict[str, object]:
    return {
        "stage": "main",
        "service": "forecast",
        "instance": "i-1",
        "trace_id": None,
        "model": "linear",
        "model_version": 1,
        "ts": ts,
        "latency_ms": 0.1,
        "energy_j": 1e-5,
        "energy_source": "estimate",
        "prediction": 1.0,
        "target": 1.5,
        "drift_value": 1.5,
        "metrics": {"confidence": 0.9, "note\t": 1.0},  # a tab, escaped by COPY
        **extra,
    }


def one(name: str, model: str) -> Application:
    return Application.single(name, [model], services=[{"name": "forecast"}])


@pytest.fixture
def postgres() -> Iterator[str]:
    with fresh_postgres() as url:
        yield url


def rows_in(url: str, table: str) -> int:
    engine = create_engine(url)
    with engine.connect() as connection:
        count = int(connection.execute(text(f'SELECT count(*) FROM "{table}"')).scalar_one())
    engine.dispose()
    return count


def test_a_batch_over_several_days_lands_in_their_partitions(postgres: str) -> None:
    store = Store(postgres, clock=lambda: JAN_1 + 3 * DAY)
    try:
        app, _ = store.create_app(one("traffic", "linear"))
        stamps = [JAN_1 + 0.5 * DAY * i for i in range(6)]  # 2024-01-01 to 01-03
        rows = [sample(ts, trace_id=f"t{i}" if i % 2 else None) for i, ts in enumerate(stamps)]
        accepted, _, _ = store.ingest(app, rows, [], pull=["forecast"])
        assert accepted == 6
        for day in (19_723, 19_724, 19_725):
            assert rows_in(postgres, partition_name(day)) == 2
        assert rows_in(postgres, "telemetry_default") == 0
        read = list(store.telemetry(app))
        assert [r["ts"] for r in read] == stamps
        assert read[0]["metrics"] == {"confidence": 0.9, "note\t": 1.0}
        assert read[0]["stage"] == "main"
        assert [r["trace_id"] for r in read] == [None, "t1", None, "t3", None, "t5"]
        assert list(store.telemetry(app, start=JAN_1 + DAY, end=JAN_1 + 2 * DAY)) == read[2:4]
        assert store.count_telemetry(app) == 6
        assert set(store.telemetry_partitions()) >= {
            "telemetry_p20240101",
            "telemetry_p20240102",
            "telemetry_p20240103",
        }
    finally:
        store.close()


def test_upkeep_makes_today_and_the_next_days_ahead(postgres: str) -> None:
    store = Store(postgres, clock=lambda: JAN_1 + 10.0)
    try:
        store.maintain_telemetry()
        assert store.telemetry_partitions() == [
            "telemetry_p20240101",
            "telemetry_p20240102",
            "telemetry_p20240103",
        ]
        store.maintain_telemetry()  # again: nothing to do, nothing fails
        assert len(store.telemetry_partitions()) == 3
    finally:
        store.close()


def test_days_beyond_a_batchs_share_go_to_the_default_partition_and_move_out_later(
    postgres: str,
) -> None:
    store = Store(postgres, clock=lambda: JAN_1 + 30 * DAY)
    try:
        app, _ = store.create_app(one("traffic", "linear"))
        many = telemetry_module.NEW_PARTITIONS_PER_BATCH + 2
        store.insert_telemetry(app, [sample(JAN_1 + DAY * d) for d in range(many)])
        # the latest days got theirs; the two earliest wait in the default partition
        assert rows_in(postgres, "telemetry_default") == 2
        assert rows_in(postgres, partition_name(19_723 + many - 1)) == 1
        assert store.count_telemetry(app) == many
        # a later batch of the first day makes its partition: its waiting row moves in
        store.insert_telemetry(app, [sample(JAN_1 + 60.0)])
        assert rows_in(postgres, "telemetry_default") == 1
        assert rows_in(postgres, partition_name(19_723)) == 2
        assert [r["ts"] for r in store.telemetry(app)][:3] == [JAN_1, JAN_1 + 60.0, JAN_1 + DAY]
        # stamps no partition can have go to the default partition
        store.insert_telemetry(app, [sample(-1e300), sample(1e300)])
        assert store.count_telemetry(app) == many + 3
    finally:
        store.close()


def test_a_partition_that_cannot_be_made_at_once_costs_nothing_but_a_wait(
    postgres: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long reader of the default partition holds the lock that attaching a partition
    needs: the batch does not wait for it, its rows go to the default partition, and the
    next attempt, once the reader is done, moves them."""
    monkeypatch.setattr(telemetry_module, "PARTITION_LOCK_TIMEOUT", "100ms")
    store = Store(postgres, clock=lambda: JAN_1)
    reader = create_engine(postgres)
    try:
        app, _ = store.create_app(one("traffic", "linear"))
        with reader.connect() as connection, connection.begin():
            connection.execute(text("SELECT count(*) FROM telemetry_default")).scalar_one()
            store.insert_telemetry(app, [sample(JAN_1 + 5 * DAY + i) for i in range(10)])
            assert rows_in(postgres, "telemetry_default") == 10
        monkeypatch.setattr(store, "_partitions_retry_at", 0.0)  # the retry's pause is over
        store.insert_telemetry(app, [sample(JAN_1 + 5 * DAY + 100)])
        assert rows_in(postgres, "telemetry_default") == 0
        assert rows_in(postgres, partition_name(19_728)) == 11
    finally:
        reader.dispose()
        store.close()


def test_two_stores_make_the_same_partitions_without_a_fight(postgres: str) -> None:
    stores = [Store(postgres, clock=lambda: JAN_1) for _ in range(2)]
    try:
        app, _ = stores[0].create_app(one("traffic", "linear"))
        errors: list[BaseException] = []

        def ingest(store: Store, offset: int) -> None:
            try:
                for day in range(6):
                    rows = [sample(JAN_1 + day * DAY + offset + i) for i in range(50)]
                    store.ingest(app, rows, [], pull=["forecast"])
            except BaseException as error:  # pragma: no cover - reported below
                errors.append(error)

        threads = [
            threading.Thread(target=ingest, args=(store, 1000 * n))
            for n, store in enumerate(stores)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert stores[0].count_telemetry(app) == 600
        assert rows_in(postgres, "telemetry_default") == 0
    finally:
        for store in stores:
            store.close()


def test_a_batch_stays_whole_with_copy(postgres: str) -> None:
    """COPY is inside the batch's transaction: a refused batch key or a bad sample leaves
    nothing of the batch, and the driver's errors are SQLAlchemy's."""
    store = Store(postgres, clock=lambda: JAN_1)
    try:
        app, _ = store.create_app(one("traffic", "linear"))
        action: dict[str, object] = {
            "service": "forecast",
            "instance": None,
            "kind": "switch_model",
            "model": "linear",
            "version": None,
            "ts": JAN_1,
            "strategy": "s",
            "reason": "r",
            "trigger": "t",
            "values": {},
            "context": {},
        }
        rows = [sample(JAN_1 + i) for i in range(100)]
        store.ingest(app, rows, [action], key=("k1", "digest"))
        with pytest.raises(Conflict):
            store.ingest(app, rows, [action], key=("k1", "digest"))
        assert store.count_telemetry(app) == 100 and len(store.actions(app)) == 1
        with pytest.raises(IntegrityError):
            store.ingest(app, [*rows, sample(JAN_1, model=None)], [action])
        assert store.count_telemetry(app) == 100 and len(store.actions(app)) == 1
        # and the store's connections still work after the failed COPY
        assert store.insert_telemetry(app, rows[:3]) == 3
    finally:
        store.close()


def test_deleting_an_app_deletes_its_samples(postgres: str) -> None:
    """No foreign key is checked per sample on PostgreSQL; a trigger keeps the cascade."""
    store = Store(postgres, clock=lambda: JAN_1)
    try:
        traffic, _ = store.create_app(one("traffic", "linear"))
        vision, _ = store.create_app(one("vision", "small"))
        store.insert_telemetry(traffic, [sample(JAN_1 + i) for i in range(5)])
        store.insert_telemetry(vision, [sample(JAN_1 + i) for i in range(3)])
        with store.engine.begin() as connection:
            connection.execute(text("DELETE FROM apps WHERE name = 'traffic'"))
        assert rows_in(postgres, "telemetry") == 3
    finally:
        store.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_retention_forgets_old_samples(backend: str, tmp_path: Path) -> None:
    now = JAN_1 + 10 * DAY + DAY / 2  # 2024-01-11 12:00
    with database(backend, tmp_path) as url:
        store = Store(url, clock=lambda: now, telemetry_retention_days=3)
        try:
            app, _ = store.create_app(one("traffic", "linear"))
            stamps = [JAN_1 + DAY * d + 3600 * h for d in range(11) for h in (1, 13)]
            store.insert_telemetry(app, [sample(ts) for ts in stamps])
            store.maintain_telemetry()
            kept = [r["ts"] for r in store.telemetry(app)]
            cutoff = now - 3 * DAY  # 2024-01-08 12:00
            if backend == "sqlite":
                assert kept == [ts for ts in stamps if ts >= cutoff]
            else:  # by whole days: 2024-01-08 stays until all of it is older than 3 days
                assert kept == [ts for ts in stamps if ts >= JAN_1 + 7 * DAY]
                assert "telemetry_p20240107" not in store.telemetry_partitions()
                assert "telemetry_p20240108" in store.telemetry_partitions()
            store.insert_telemetry(app, [sample(now)])  # and ingestion goes on
            assert store.count_telemetry(app) == len(kept) + 1
        finally:
            store.close()


def _migrations() -> Config:
    config = Config()
    config.set_main_option("script_location", str(resources.files("harmonia.store") / "migrations"))
    return config


def _migrate(url: str, revision: str, *, down: bool = False) -> None:
    config = _migrations()
    engine = create_engine(url)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)
    engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_samples_stored_before_0013_move_into_partitions(backend: str, tmp_path: Path) -> None:
    with database(backend, tmp_path) as url:
        _migrate(url, "0012")
        store_at_0012 = create_engine(url)
        stamps = [0.0, 1.0, JAN_1 + 5.0, JAN_1 + DAY + 5.0, JAN_1 + DAY + 6.0]
        with store_at_0012.begin() as sql:
            app_id = sql.execute(
                text(
                    "INSERT INTO apps (name, owner, token_hash, created, domain_id) "
                    "VALUES ('traffic', 'team', 'hash', 1.0, "
                    "(SELECT id FROM domains WHERE name = 'default')) RETURNING id"
                )
            ).scalar_one()
            stage_id = sql.execute(
                text(
                    "INSERT INTO stages (app_id, name, position, after) "
                    "VALUES (:app, 'main', 0, '[]') RETURNING id"
                ),
                {"app": app_id},
            ).scalar_one()
            sql.execute(
                text(
                    "INSERT INTO services (app_id, stage_id, name, position, models) "
                    "VALUES (:app, :stage, 'forecast', 0, '[\"linear\"]')"
                ),
                {"app": app_id, "stage": stage_id},
            )
            for i, ts in enumerate(stamps):
                sql.execute(
                    text(
                        "INSERT INTO telemetry (app_id, instance, service, model, model_version, "
                        "ts, metrics, trace_id) VALUES (:app, 'i', 'forecast', :model, 1, :ts, "
                        "'{\"r2\": 0.5}', :trace)"
                    ),
                    {"app": app_id, "model": f"m{i}", "ts": ts, "trace": f"t{i}"},
                )
            old_ids = sql.execute(text("SELECT id FROM telemetry ORDER BY id")).scalars().all()
        store_at_0012.dispose()

        store = Store(url, clock=lambda: JAN_1 + DAY)  # migrates to the head
        try:
            app = store.app("traffic")
            read = list(store.telemetry(app))
            assert [r["ts"] for r in read] == stamps
            assert [r["trace_id"] for r in read] == ["t0", "t1", "t2", "t3", "t4"]
            assert read[0]["metrics"] == {"r2": 0.5}
            assert store.last_served(app, "forecast") == ("m4", 1)
            store.insert_telemetry(app, [sample(JAN_1 + DAY + 7.0)])
            assert store.count_telemetry(app) == 6
            engine = create_engine(url)
            with engine.connect() as connection:
                query = text("SELECT id FROM telemetry ORDER BY id")
                ids = connection.execute(query).scalars().all()
                assert ids[:5] == old_ids and ids[5] > old_ids[-1]  # the numbering goes on
                if backend == "postgresql":
                    query = text("SELECT relname, relkind FROM pg_class WHERE relname LIKE 'tele%'")
                    kinds: dict[str, str] = dict(connection.execute(query).tuples().all())
                    assert kinds["telemetry"] == "p"
                    days = {"telemetry_p19700101", "telemetry_p20240101", "telemetry_p20240102"}
                    assert days <= set(kinds)
                    assert rows_in(url, "telemetry_p20240102") == 3
            engine.dispose()
        finally:
            store.close()

        _migrate(url, "0012", down=True)
        engine = create_engine(url)
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM telemetry")).scalar_one() == 6
            assert inspect(connection).get_pk_constraint("telemetry")["constrained_columns"] == [
                "id"
            ]
            if backend == "postgresql":
                kind = connection.execute(
                    text("SELECT relkind FROM pg_class WHERE relname = 'telemetry'")
                ).scalar_one()
                assert kind == "r"
        engine.dispose()
        Store(url).close()  # and up again
