"""Migrations keep what was stored: a database written by the schema before pipelines (0004)
opens as pipelines, with its apps, telemetry, policies, versions, windows and actions."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from databases import BACKENDS, database
from sqlalchemy import create_engine, inspect, text

from harmonia.core.application import Application
from harmonia.store import Store, StoredSLOState

OLD_APPS = [
    # registered with two services: both keep every model, policy and version
    ("traffic", ["linear", "lstm"], [{"name": "forecast", "instances": ["edge-1"]}, {"name": "b"}]),
    # registered without services; its telemetry named one
    ("vision", ["small", "large"], []),
]


def _at_revision(url: str, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(resources.files("harmonia.store") / "migrations"))
    engine = create_engine(url)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    engine.dispose()


def _write_old_data(url: str) -> None:
    """What a 0004 server stored, written with that schema's SQL."""
    engine = create_engine(url)
    with engine.begin() as sql:
        for name, models, services in OLD_APPS:
            app_id = sql.execute(
                text(
                    "INSERT INTO apps (name, owner, token_hash, models, services, created) "
                    "VALUES (:name, 'team', 'hash', :models, :services, 1.0) RETURNING id"
                ),
                {"name": name, "models": _json(models), "services": _json(services)},
            ).scalar_one()
            sql.execute(
                text(
                    "INSERT INTO policies (app_id, version, document, created) "
                    "VALUES (:app, 1, :doc, 2.0)"
                ),
                {"app": app_id, "doc": _json({"policy": f"{name}-p"})},
            )
            sql.execute(
                text(
                    "INSERT INTO model_versions (app_id, model, version, created, fingerprint, "
                    "details) VALUES (:app, :model, 2, 3.0, '[0.5]', '{}')"
                ),
                {"app": app_id, "model": models[0]},
            )
            sql.execute(
                text(
                    'INSERT INTO windows (app_id, start, "end", model, version, count, signals) '
                    "VALUES (:app, 0.0, 1.0, :model, 1, 10, '{}')"
                ),
                {"app": app_id, "model": models[0]},
            )
            sql.execute(
                text(
                    "INSERT INTO actions (app_id, kind, model, version, ts, strategy, reason, "
                    'trigger, "values", context, status, detail) VALUES (:app, '
                    "'switch_model', :model, NULL, 4.0, 's', 'r', 't', '{}', '{}', 'pending', '')"
                ),
                {"app": app_id, "model": models[1]},
            )
            service = services[0]["name"] if services else "default"
            for i in range(5):
                sql.execute(
                    text(
                        "INSERT INTO telemetry (app_id, instance, service, model, model_version, "
                        "ts, metrics) VALUES (:app, 'i', :service, :model, 1, :ts, '{}')"
                    ),
                    {"app": app_id, "service": service, "model": models[0], "ts": float(i)},
                )
    engine.dispose()


def _json(value: object) -> str:
    import json

    return json.dumps(value)


@pytest.mark.parametrize("backend", BACKENDS)
def test_stored_apps_and_telemetry_survive_the_pipeline_migration(
    backend: str, tmp_path: Path
) -> None:
    with database(backend, tmp_path) as url:
        _at_revision(url, "0004")
        _write_old_data(url)
        store = Store(url)  # migrates to the head
        try:
            traffic, vision = store.app("traffic"), store.app("vision")
            assert [s.name for s in traffic.structure.stages] == ["main"]
            assert traffic.services == ("forecast", "b")
            assert traffic.structure.service("b").models == ["linear", "lstm"]
            assert vision.services == ("default",)  # the service its telemetry named
            assert [(i.service, i.name) for i in store.instances(traffic)] == [
                ("forecast", "edge-1")
            ]

            rows = list(store.telemetry(traffic))
            assert len(rows) == 5 and {(r["stage"], r["service"]) for r in rows} == {
                ("main", "forecast")
            }
            assert all(r["trace_id"] is None for r in rows)
            assert store.last_served(vision, "default") == ("small", 1)

            # the app's policy and versions now belong to each of its services
            for service in ("forecast", "b"):
                policy = store.policy(traffic, service)
                assert policy is not None and policy.document == {"policy": "traffic-p"}
                [version] = store.versions(traffic, service)
                assert (version.model, version.version, version.fingerprint) == (
                    "linear",
                    2,
                    (0.5,),
                )
            # actions and windows were the app's: its first service's
            [action] = store.actions(traffic)
            assert (action.service, action.instance, action.model) == ("forecast", None, "lstm")
            [window] = store.windows(traffic)
            assert window["service"] == "forecast"
            assert [a.id for a in store.deliver_pending(traffic, ["forecast"])] == [action.id]

            # and the migrated store takes new policies and apps as usual
            assert store.add_policy(traffic, "b", {"policy": "next"}).version == 2
        finally:
            store.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_slo_states_come_with_0008_and_go_with_its_downgrade(backend: str, tmp_path: Path) -> None:
    """0008 adds where each SLO stands; a contract stored before it keeps its violations."""
    with database(backend, tmp_path) as url:
        _at_revision(url, "0007")
        store = Store(url)  # migrates to the head
        try:
            traffic = store.create_app(_one_stage("traffic"))[0]
            stored = store.add_contract(traffic, {"slos": []})
            assert store.slo_states(traffic, stored.version) == []
            state = StoredSLOState("fast", "violated", 1.0, 2.0, {"slo": "fast"})
            store.save_slo_states(traffic, stored.version, [state])
            store.save_slo_states(traffic, stored.version, [state])  # replaced, not doubled
            assert store.slo_states(traffic, stored.version) == [state]
        finally:
            store.close()
        config = Config()
        config.set_main_option(
            "script_location", str(resources.files("harmonia.store") / "migrations")
        )
        engine = create_engine(url)
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0007")
        with engine.connect() as connection:
            assert "slo_states" not in inspect(connection).get_table_names()
            assert "contracts" in inspect(connection).get_table_names()
        engine.dispose()


def _one_stage(name: str) -> Application:
    return Application.single(name, ["linear"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_apps_stored_before_0010_belong_to_the_default_domain(backend: str, tmp_path: Path) -> None:
    """0010 adds organisations, domains, keys and the audit log; an app registered before it
    belongs to the ``default`` domain of the ``default`` organisation, and it goes away with
    its downgrade."""
    with database(backend, tmp_path) as url:
        _at_revision(url, "0009")
        engine = create_engine(url)
        with engine.begin() as sql:
            app_id = sql.execute(
                text(
                    "INSERT INTO apps (name, owner, token_hash, created) "
                    "VALUES ('traffic', 'team', 'hash', 1.0) RETURNING id"
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
        engine.dispose()
        store = Store(url)  # migrates to the head
        try:
            assert store.app("traffic").domain == "default"
            [domain] = store.domains()
            assert (domain.name, domain.org) == ("default", "default")
            assert store.create_app(_one_stage("vision"))[0].domain == "default"
        finally:
            store.close()
        config = Config()
        config.set_main_option(
            "script_location", str(resources.files("harmonia.store") / "migrations")
        )
        engine = create_engine(url)
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0009")
        with engine.connect() as connection:
            tables = inspect(connection).get_table_names()
            assert not {"orgs", "domains", "api_keys", "audit_log"} & set(tables)
            columns = {c["name"] for c in inspect(connection).get_columns("apps")}
            assert "domain_id" not in columns
            assert connection.execute(text("SELECT count(*) FROM apps")).scalar_one() == 2
        engine.dispose()
