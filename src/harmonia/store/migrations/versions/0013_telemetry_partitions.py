"""Telemetry partitioned by time on PostgreSQL: a partition a UTC day of ``ts``
(``telemetry_pYYYYMMDD``, made by the store ahead of time and on demand) and a default
partition for what has none, so that retention drops a day's partition instead of deleting its
rows one by one. The stored samples move into the partitions of their days (the most recent
MIGRATED_DAYS days; earlier ones into the default partition, whose rows move into a day's
partition when the store makes it).

Ingestion goes in with COPY, and each row's checks cost as much as the row: the table keeps
its (app_id, ts) index, but no primary key on ``id`` (its sequence alone numbers the rows; a
key on a partitioned table would have to hold ``ts`` too, and would cost a second index) and
no foreign key to ``apps`` (a lookup and a row lock on the app per sample); deleting an app
deletes its samples through a trigger instead.

A no-op on SQLite, which keeps its one table.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

from datetime import date, timedelta

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

#: the most recent days of stored samples that get a partition of their own
MIGRATED_DAYS = 400
DAY = 86_400
_EPOCH = date(1970, 1, 1)
_FIRST_DAY = (date.min - _EPOCH).days
_LAST_DAY = (date.max - _EPOCH).days - 1

_COLUMNS = (
    "id, app_id, instance, service, model, model_version, ts, latency_ms, energy_j, "
    "energy_source, prediction, target, drift_value, metrics, trace_id"
)


def _table(name: str, *, partitioned: bool) -> str:
    """The telemetry table's DDL as of 0012 (unpartitioned: its key and foreign key)."""
    key = "" if partitioned else " PRIMARY KEY"
    app = "" if partitioned else " REFERENCES apps (id) ON DELETE CASCADE"
    return (
        f"CREATE TABLE {name} ("
        f"id BIGINT NOT NULL DEFAULT nextval('telemetry_id_seq'::regclass){key}, "
        f"app_id INTEGER NOT NULL{app}, "
        "instance VARCHAR(128) NOT NULL, "
        "service VARCHAR(128) NOT NULL, "
        "model VARCHAR(128) NOT NULL, "
        "model_version INTEGER, "
        "ts FLOAT NOT NULL, "
        "latency_ms FLOAT, "
        "energy_j FLOAT, "
        "energy_source VARCHAR(32), "
        "prediction FLOAT, "
        "target FLOAT, "
        "drift_value FLOAT, "
        "metrics JSON NOT NULL, "
        "trace_id VARCHAR(64))" + (" PARTITION BY RANGE (ts)" if partitioned else "")
    )


def _partition_name(day: int) -> str:
    d = _EPOCH + timedelta(days=day)
    return f"telemetry_p{d.year:04d}{d.month:02d}{d.day:02d}"


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE telemetry RENAME TO telemetry_unpartitioned")
    op.execute("ALTER INDEX ix_telemetry_app_ts RENAME TO ix_telemetry_unpartitioned_app_ts")
    op.execute("ALTER SEQUENCE telemetry_id_seq OWNED BY NONE")
    op.execute(_table("telemetry", partitioned=True))
    op.execute("ALTER SEQUENCE telemetry_id_seq OWNED BY telemetry.id")
    op.execute("CREATE INDEX ix_telemetry_app_ts ON telemetry (app_id, ts)")
    op.execute("CREATE TABLE telemetry_default PARTITION OF telemetry DEFAULT")
    days = bind.scalars(
        sa.text(
            "SELECT DISTINCT floor(ts / :day)::bigint AS day FROM telemetry_unpartitioned "
            "WHERE ts BETWEEN :first AND :last ORDER BY day DESC LIMIT :days"
        ),
        {
            "day": DAY,
            "first": _FIRST_DAY * DAY,
            "last": (_LAST_DAY + 1) * DAY - 1,
            "days": MIGRATED_DAYS,
        },
    ).all()
    for day in days:
        op.execute(
            f"CREATE TABLE {_partition_name(day)} PARTITION OF telemetry "
            f"FOR VALUES FROM ({day * DAY}) TO ({(day + 1) * DAY})"
        )
    op.execute(f"INSERT INTO telemetry ({_COLUMNS}) SELECT {_COLUMNS} FROM telemetry_unpartitioned")
    op.execute("DROP TABLE telemetry_unpartitioned")
    # ON DELETE CASCADE, without a foreign key for every sample to check
    op.execute(
        "CREATE OR REPLACE FUNCTION telemetry_of_deleted_app() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN DELETE FROM telemetry WHERE app_id = OLD.id; "
        "RETURN OLD; END $$"
    )
    op.execute(
        "CREATE TRIGGER apps_delete_telemetry AFTER DELETE ON apps "
        "FOR EACH ROW EXECUTE FUNCTION telemetry_of_deleted_app()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS apps_delete_telemetry ON apps")
    op.execute("DROP FUNCTION IF EXISTS telemetry_of_deleted_app()")
    op.execute("ALTER TABLE telemetry RENAME TO telemetry_partitioned")
    op.execute("ALTER INDEX ix_telemetry_app_ts RENAME TO ix_telemetry_partitioned_app_ts")
    op.execute("ALTER SEQUENCE telemetry_id_seq OWNED BY NONE")
    op.execute(_table("telemetry", partitioned=False))
    op.execute("ALTER SEQUENCE telemetry_id_seq OWNED BY telemetry.id")
    op.execute(
        f"INSERT INTO telemetry ({_COLUMNS}) SELECT {_COLUMNS} FROM telemetry_partitioned "
        "WHERE app_id IN (SELECT id FROM apps)"  # a sample of a deleted app has no home
    )
    op.execute("DROP TABLE telemetry_partitioned")  # and its partitions
    op.execute("CREATE INDEX ix_telemetry_app_ts ON telemetry (app_id, ts)")
