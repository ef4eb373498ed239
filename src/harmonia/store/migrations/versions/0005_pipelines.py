"""Applications become pipelines: stages, services, nodes and instances in tables (not a JSON
blob on the app), telemetry with its trace id, and policies, windows, actions and
model versions per service.

Every application stored before becomes the one-stage case: a stage ``main`` whose services
are the ones it registered, plus any service its telemetry named, or ``default``; each serves
all the app's models. Policies and model versions, which were per app, go to each service;
the telemetry's stage is its service's (so it is not stored per sample).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

STAGE = "main"
SERVICE = "default"


def _app_id() -> sa.Column[int]:
    return sa.Column(
        "app_id", sa.Integer(), sa.ForeignKey("apps.id", ondelete="CASCADE"), nullable=False
    )


def upgrade() -> None:
    _structure_tables()
    bind = op.get_bind()
    services_of = _convert_apps(bind)

    with op.batch_alter_table("telemetry") as batch:
        # no stage: a service is in one stage (`Store.telemetry` adds it to what it reads)
        batch.add_column(sa.Column("trace_id", sa.String(64), nullable=True))
    with op.batch_alter_table("actions") as batch:
        batch.add_column(
            sa.Column("service", sa.String(128), nullable=False, server_default=SERVICE)
        )
        batch.add_column(sa.Column("instance", sa.String(128), nullable=True))
    with op.batch_alter_table("windows") as batch:
        batch.add_column(
            sa.Column("service", sa.String(128), nullable=False, server_default=SERVICE)
        )
    for app_id, services in services_of.items():
        # Actions and windows had no target: they were the app's, i.e. its first service's.
        for table in ("actions", "windows"):
            bind.execute(
                sa.text(f"UPDATE {table} SET service = :service WHERE app_id = :app"),
                {"service": services[0], "app": app_id},
            )

    _per_service(
        bind,
        "policies",
        services_of,
        columns=[
            sa.Column("version", sa.Integer(), nullable=False),
            sa.Column("document", sa.JSON(), nullable=False),
            sa.Column("created", sa.Float(), nullable=False),
        ],
        unique=("app_id", "service", "version"),
        unique_name="uq_policies_app_service_version",
    )
    op.create_index("ix_policies_app_id", "policies", ["app_id"])
    _per_service(
        bind,
        "model_versions",
        services_of,
        columns=[
            sa.Column("model", sa.String(128), nullable=False),
            sa.Column("version", sa.Integer(), nullable=False),
            sa.Column("created", sa.Float(), nullable=False),
            sa.Column("fingerprint", sa.JSON(), nullable=False),
            sa.Column("details", sa.JSON(), nullable=False),
        ],
        unique=("app_id", "service", "model", "version"),
        unique_name="uq_model_versions_service_model",
    )
    # SQLite 3.35+ and PostgreSQL drop a column in place: no copy of ``apps``, whose copy
    # would make SQLite cascade the drop of the old table into every row that refers to it.
    op.execute("ALTER TABLE apps DROP COLUMN models")
    op.execute("ALTER TABLE apps DROP COLUMN services")


def _structure_tables() -> None:
    op.create_table(
        "stages",
        sa.Column("id", sa.Integer(), primary_key=True),
        _app_id(),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("after", sa.JSON(), nullable=False),
        sa.UniqueConstraint("app_id", "name", name="uq_stages_app_name"),
    )
    op.create_table(
        "services",
        sa.Column("id", sa.Integer(), primary_key=True),
        _app_id(),
        sa.Column(
            "stage_id",
            sa.Integer(),
            sa.ForeignKey("stages.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("models", sa.JSON(), nullable=False),
        sa.Column("effector_url", sa.String(512), nullable=True),
        sa.UniqueConstraint("app_id", "name", name="uq_services_app_name"),
    )
    op.create_table(
        "nodes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("updated", sa.Float(), nullable=False),
    )
    op.create_table(
        "instances",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "service_id",
            sa.Integer(),
            sa.ForeignKey("services.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column(
            "node_id", sa.Integer(), sa.ForeignKey("nodes.id", ondelete="SET NULL"), nullable=True
        ),
        sa.Column("registered", sa.Float(), nullable=False),
        sa.UniqueConstraint("service_id", "name", name="uq_instances_service_name"),
    )


def _convert_apps(bind: Any) -> dict[int, list[str]]:
    """A stage and services for every stored app; returns each app's service names."""
    services_of: dict[int, list[str]] = {}
    apps = bind.execute(sa.text("SELECT id, models, services, created FROM apps")).all()
    for app_id, models, listed, created in apps:
        models, listed = _json(models), _json(listed)
        declared = {item["name"]: list(item.get("instances", [])) for item in listed}
        reported = bind.execute(
            sa.text("SELECT DISTINCT service FROM telemetry WHERE app_id = :app ORDER BY service"),
            {"app": app_id},
        ).scalars()
        for name in reported:
            declared.setdefault(name, [])
        if not declared:
            declared[SERVICE] = []
        stage_id = bind.execute(
            sa.text(
                "INSERT INTO stages (app_id, name, position, after) "
                "VALUES (:app, :name, 0, :after) RETURNING id"
            ).bindparams(sa.bindparam("after", type_=sa.JSON())),
            {"app": app_id, "name": STAGE, "after": []},
        ).scalar_one()
        for position, (name, instances) in enumerate(declared.items()):
            service_id = bind.execute(
                sa.text(
                    "INSERT INTO services (app_id, stage_id, name, position, models) "
                    "VALUES (:app, :stage, :name, :position, :models) RETURNING id"
                ).bindparams(sa.bindparam("models", type_=sa.JSON())),
                {
                    "app": app_id,
                    "stage": stage_id,
                    "name": name,
                    "position": position,
                    "models": models,
                },
            ).scalar_one()
            for instance in instances:
                bind.execute(
                    sa.text(
                        "INSERT INTO instances (service_id, name, registered) "
                        "VALUES (:service, :name, :created)"
                    ),
                    {"service": service_id, "name": instance, "created": created},
                )
        services_of[app_id] = list(declared)
    return services_of


def _per_service(
    bind: Any,
    table: str,
    services_of: dict[int, list[str]],
    *,
    columns: list[sa.Column[Any]],
    unique: tuple[str, ...],
    unique_name: str,
) -> None:
    """Rebuild ``table`` with a ``service`` column, its rows copied to each service of their
    app (a new table and a copy, since the old unique constraint has no portable name)."""
    names = [column.name for column in columns]
    op.create_table(
        f"{table}_v5",
        sa.Column("id", sa.Integer(), primary_key=True),
        _app_id(),
        sa.Column("service", sa.String(128), nullable=False),
        *columns,
        sa.UniqueConstraint(*unique, name=unique_name),
    )
    listed = ", ".join(names)
    for app_id, services in services_of.items():
        for service in services:
            bind.execute(
                sa.text(
                    f"INSERT INTO {table}_v5 (app_id, service, {listed}) "
                    f"SELECT app_id, :service, {listed} FROM {table} WHERE app_id = :app"
                ),
                {"service": service, "app": app_id},
            )
    op.drop_table(table)
    op.rename_table(f"{table}_v5", table)


def _json(value: Any) -> Any:
    """A JSON column read through ``text()``: a string on SQLite, decoded on PostgreSQL."""
    return json.loads(value) if isinstance(value, str) else value


def downgrade() -> None:
    raise NotImplementedError("0005 converts apps into pipelines; there is no way back")
