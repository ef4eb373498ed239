"""Telemetry: the samples, stored and read back (export, the latest served model, counts).

Samples go in without the ORM (its per-object work would cost more than the database itself):
on SQLite one ``executemany`` at the driver, on PostgreSQL (psycopg 3) one binary ``COPY``.
`_telemetry_params` and `_insert_telemetry` are apart from the transaction so that
`Store.ingest`, the hot path, builds the parameters before it takes the write lock and inserts
inside its one commit.

On PostgreSQL the table is partitioned by range of ``ts``, a partition a day (UTC), plus a
default partition for whatever falls outside them (migration 0013). The store creates today's
partition and the next ones ahead (`maintain_telemetry`, once a day), any other day a batch
needs on demand, before the batch's transaction; retention (``telemetry_retention_days``)
drops the partitions wholly older than it. A day whose partition cannot be made at once (a
lock held by a long export, too many new days in one batch) goes to the default partition:
nothing waits and nothing is lost; its rows move into the day's partition when it is made.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, timedelta
from itertools import repeat
from operator import floordiv, itemgetter
from typing import Any

import orjson
from sqlalchemy import Connection, delete, func, select, text
from sqlalchemy.exc import DBAPIError

from harmonia.store.apps import App
from harmonia.store.base import StoreBase
from harmonia.store.tables import TelemetryRow

logger = logging.getLogger("harmonia.store")

#: a sample as stored; its stage is not (a service belongs to one stage), only exported
STORED_COLUMNS = (
    "service",
    "instance",
    "model",
    "model_version",
    "ts",
    "latency_ms",
    "energy_j",
    "energy_source",
    "prediction",
    "target",
    "drift_value",
    "metrics",
    "trace_id",  # last: a batch without traces leaves it out of its insert
)
#: a sample as exported: the stored columns with the stage of its service
TELEMETRY_COLUMNS = ("stage", *STORED_COLUMNS)

_TS = itemgetter("ts")
_TRACE_ID = itemgetter("trace_id")
_METRICS = itemgetter("metrics")
_TELEMETRY_INSERT = "INSERT INTO telemetry (app_id, {columns}) VALUES ({markers})"
#: the binary COPY's type of each column: app_id, then STORED_COLUMNS (``metrics`` is json,
#: whose binary form is its text)
_COPY_TYPES = (
    "int4",
    *("text", "text", "text", "int4", "float8", "float8", "float8", "text"),
    *("float8", "float8", "float8", "text", "text"),
)

#: the span of one telemetry partition (seconds): a UTC day
PARTITION_SECONDS = 86_400
#: partitions made ahead of today, so that the day's first samples find theirs
PARTITIONS_AHEAD = 2
#: days without a partition that one batch may have made for it; more go to the default
NEW_PARTITIONS_PER_BATCH = 8
#: how long partition upkeep waits for a lock before it gives up (until next time): a long
#: export holds one, and batches queue behind a partition's drop while it waits
PARTITION_LOCK_TIMEOUT = "1s"
#: after a failed attempt, how long batches go to the default partition before the next
PARTITION_RETRY_SECONDS = 30.0
#: the advisory lock that serialises partition maintenance across every store of a database
_PARTITION_LOCK = 0x4861726D_6F6E6961  # "Harmonia" in ASCII
_EPOCH = date(1970, 1, 1)
_FIRST_DAY = (date.min - _EPOCH).days
_LAST_DAY = (date.max - _EPOCH).days - 1


def partition_name(day: int) -> str:
    """The partition of UTC day ``day`` (days since 1970-01-01): ``telemetry_pYYYYMMDD``.

    >>> partition_name(0), partition_name(19_723)
    ('telemetry_p19700101', 'telemetry_p20240101')
    """
    d = _EPOCH + timedelta(days=day)
    return f"telemetry_p{d.year:04d}{d.month:02d}{d.day:02d}"


def _day_of_partition(name: str) -> int | None:
    digits = name.removeprefix("telemetry_p")
    if len(digits) != 8 or not digits.isdigit() or digits == name:
        return None
    try:
        return (date(int(digits[:4]), int(digits[4:6]), int(digits[6:])) - _EPOCH).days
    except ValueError:
        return None


def _days_of(stamps: Iterable[float]) -> set[int]:
    """The UTC days of finite ``stamps`` that can have a partition."""
    days = set(map(floordiv, stamps, repeat(PARTITION_SECONDS)))  # C-level, per sample
    return {int(d) for d in days if math.isfinite(d) and _FIRST_DAY <= d <= _LAST_DAY}


def _telemetry_params(app: App, rows: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The driver's parameters for ``rows``, following STORED_COLUMNS, app_id first, and
    without ``trace_id`` when no row has one: binding a NULL per row costs a tenth of a
    SQLite insert, and most batches of a one-stage app carry no trace. Built before the
    write transaction opens, so a big batch's Python work does not hold the write lock that
    every other batch waits on. Built a column at a time (C-level ``map`` and ``zip``, and
    the empty ``metrics`` of most samples not encoded again each time): a third of the cost
    of a tuple built per row in Python."""
    dumps = orjson.dumps
    traces = list(map(_TRACE_ID, rows))
    metrics = [(m and dumps(m).decode()) or "{}" for m in map(_METRICS, rows)]
    plain = [map(itemgetter(name), rows) for name in STORED_COLUMNS[:-2]]
    if traces.count(None) == len(traces):
        return list(zip(repeat(app.id), *plain, metrics, strict=False))
    return list(zip(repeat(app.id), *plain, metrics, traces, strict=False))


def _insert_telemetry(tx: Connection, params: list[tuple[Any, ...]]) -> int:
    """Store ``params`` in transaction ``tx``: on PostgreSQL through psycopg 3, one binary
    ``COPY``; elsewhere one ``executemany`` at the driver with tuples, half the time of
    SQLAlchemy's per-row dictionaries (15 → 7 ms per 1,000 rows on SQLite)."""
    if not params:
        return 0
    columns = STORED_COLUMNS[: len(params[0]) - 1]  # with or without trace_id
    if tx.dialect.name == "postgresql" and tx.dialect.driver == "psycopg":
        _copy_telemetry(tx, columns, params)
        return len(params)
    marker = "?" if tx.dialect.paramstyle == "qmark" else "%s"
    statement = _TELEMETRY_INSERT.format(
        columns=", ".join(columns), markers=", ".join([marker] * (len(columns) + 1))
    )
    tx.exec_driver_sql(statement, params)
    return len(params)


def _copy_telemetry(tx: Connection, columns: Sequence[str], params: list[tuple[Any, ...]]) -> None:
    """One binary ``COPY`` inside ``tx``'s transaction (stored whole with the rest of it, or
    not at all). The driver's errors come out as SQLAlchemy's, as from any other statement:
    a NOT NULL violation as `IntegrityError`, a lost server as `OperationalError`."""
    statement = f"COPY telemetry (app_id, {', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
    raw = tx.connection.driver_connection
    assert raw is not None
    try:
        with raw.cursor() as cursor, cursor.copy(statement) as copy:
            copy.set_types(_COPY_TYPES[: len(columns) + 1])
            deque(map(copy.write_row, params), maxlen=0)  # no bytecode of ours per row
    except tx.dialect.loaded_dbapi.Error as error:
        invalidated = tx.dialect.is_disconnect(error, tx.connection.dbapi_connection, None)
        raise DBAPIError.instance(
            statement,
            None,
            error,
            tx.dialect.loaded_dbapi.Error,
            connection_invalidated=invalidated,
            dialect=tx.dialect,
        ) from error


class TelemetryMixin(StoreBase):
    """Samples, stored and read; on PostgreSQL, their partitions made and dropped."""

    #: whether the telemetry table is partitioned (None: not asked yet)
    _telemetry_partitioned: bool | None = None
    #: the UTC days whose partitions this store knows exist (None: not read yet)
    _telemetry_days: set[int] | None = None
    #: the day `maintain_telemetry` last ran for, and whether it is running
    _maintained_day: int | None = None
    _maintaining = False
    #: no partition is attempted on demand before this (time.monotonic) after a failure
    _partitions_retry_at = 0.0

    def insert_telemetry(self, app: App, rows: Sequence[dict[str, Any]]) -> int:
        """Store validated samples in one transaction; returns how many."""
        params = _telemetry_params(app, rows)
        self._prepare_telemetry(rows)
        with self._tx() as tx:
            return _insert_telemetry(tx, params)

    # -- partitions (PostgreSQL) and retention ----------------------------------------------

    def _partitioned(self) -> bool:
        """Whether telemetry is partitioned: on PostgreSQL, once migrated to 0013."""
        partitioned = self._telemetry_partitioned
        if partitioned is None:
            partitioned = False
            if self.engine.dialect.name == "postgresql":
                with self.engine.connect() as connection:
                    kind = connection.scalar(
                        text("SELECT relkind FROM pg_class WHERE oid = 'telemetry'::regclass")
                    )
                partitioned = kind == "p"
            self._telemetry_partitioned = partitioned
        return partitioned

    def _prepare_telemetry(self, rows: Sequence[dict[str, Any]]) -> None:
        """Before a batch's transaction: start the day's upkeep when the day has turned, and
        on PostgreSQL make the partitions of the batch's days that do not exist yet (in
        their own transaction, so that the batch's holds no lock on the table's shape)."""
        partitioned = self._partitioned()
        if int(self.clock() // PARTITION_SECONDS) != self._maintained_day and (
            partitioned or self.telemetry_retention_days is not None
        ):
            self._maintain_in_background()
        if not partitioned:
            return
        missing = _days_of(map(_TS, rows)) - self._known_partitions()
        if missing and time.monotonic() >= self._partitions_retry_at:
            self._make_partitions(sorted(missing)[-NEW_PARTITIONS_PER_BATCH:])

    def _known_partitions(self) -> set[int]:
        known = self._telemetry_days
        if known is None:
            with self.engine.connect() as connection:
                known = self._telemetry_days = _partition_days(connection)
        return known

    def telemetry_partitions(self) -> list[str]:
        """The names of the telemetry table's daily partitions, oldest first (none on
        SQLite, whose table is not partitioned)."""
        if not self._partitioned():
            return []
        with self.engine.connect() as connection:
            days = self._telemetry_days = _partition_days(connection)
        return [partition_name(day) for day in sorted(days)]

    def _make_partitions(self, days: Iterable[int]) -> bool:
        """Make the partitions of ``days`` that do not exist, moving the rows of those days
        out of the default partition; True if they all exist now. One transaction under an
        advisory lock (replicas make them one at a time) that gives up after
        PARTITION_LOCK_TIMEOUT: the days' rows go to the default partition meanwhile."""
        with self._upkeep_lock:
            try:
                with self.engine.begin() as tx:
                    _lock_partitions(tx)
                    existing = _partition_days(tx)
                    for day in days:
                        if day not in existing:
                            _attach_partition(tx, day)
                            existing.add(day)
            except DBAPIError as error:
                self._partitions_retry_at = time.monotonic() + PARTITION_RETRY_SECONDS
                self._telemetry_days = None  # read again: another store may have made some
                logger.warning(
                    "telemetry partitions not made (%s); their days' samples go to the "
                    "default partition meanwhile",
                    str(error.orig or error).splitlines()[0],
                )
                return False
            self._telemetry_days = existing
            return True

    def maintain_telemetry(self, now: float | None = None) -> None:
        """The day's telemetry upkeep at ``now`` (default: the store's clock): on PostgreSQL
        make today's partition and the PARTITIONS_AHEAD next ones; with a retention, forget
        the samples older than it (`drop_telemetry_before`). Runs by itself off the request
        path when a store's first batch of a day comes; callable at any time."""
        now = self.clock() if now is None else now
        today = int(now // PARTITION_SECONDS)
        if self._partitioned():
            self._make_partitions(range(today, today + PARTITIONS_AHEAD + 1))
        if self.telemetry_retention_days is not None:
            self.drop_telemetry_before(now - self.telemetry_retention_days * PARTITION_SECONDS)

    def _maintain_in_background(self) -> None:
        today = int(self.clock() // PARTITION_SECONDS)
        with self._upkeep_lock:
            if self._maintaining or today == self._maintained_day:
                return
            self._maintaining, self._maintained_day = True, today

        def run() -> None:
            try:
                self.maintain_telemetry()
            except Exception:  # a closing store, a database away: the next day, or open
                logger.warning("telemetry upkeep failed", exc_info=True)
            finally:
                self._maintaining = False

        threading.Thread(target=run, name="harmonia-telemetry-upkeep", daemon=True).start()

    def drop_telemetry_before(self, cutoff: float) -> None:
        """Retention: forget the samples stamped before ``cutoff``. On PostgreSQL by whole
        days: the partitions that end by ``cutoff`` are dropped (a day partly older than the
        retention stays until all of it is) and the default partition's rows before it are
        deleted. On SQLite the rows before it are deleted, 10,000 a transaction, so that
        batches go in between."""
        if not self._partitioned():
            chosen = select(TelemetryRow.id).where(TelemetryRow.ts < cutoff).limit(10_000)
            while True:
                with self._tx() as tx:
                    gone = tx.execute(delete(TelemetryRow).where(TelemetryRow.id.in_(chosen)))
                if gone.rowcount < 10_000:
                    return
        with self._upkeep_lock, self.engine.begin() as tx:
            _lock_partitions(tx)
            schema = _schema_of_telemetry(tx)
            days = _partition_days(tx)
            old = sorted(d for d in days if (d + 1) * PARTITION_SECONDS <= cutoff)
            for day in old:
                tx.exec_driver_sql(f'DROP TABLE "{schema}"."{partition_name(day)}"')
            tx.execute(
                text(f'DELETE FROM "{schema}".telemetry_default WHERE ts < :cutoff'),
                {"cutoff": cutoff},
            )
            self._telemetry_days = days - set(old)
        if old:
            logger.info(
                "telemetry retention: dropped %d daily partitions, %s to %s",
                len(old),
                partition_name(old[0]),
                partition_name(old[-1]),
            )

    def last_served(self, app: App, service: str) -> tuple[str, int | None] | None:
        """The model and version of the service's latest sample (what was serving): the
        latest in time, and of those stamped alike the last stored. By time, the index on
        (app, ts) finds it in the newest partition instead of a walk back through every
        sample stored since (and a backlog flushed late does not count as the latest)."""
        with self.engine.connect() as connection:
            row = connection.execute(
                select(TelemetryRow.model, TelemetryRow.model_version)
                .where(TelemetryRow.app_id == app.id, TelemetryRow.service == service)
                .order_by(TelemetryRow.ts.desc(), TelemetryRow.id.desc())
                .limit(1)
            ).first()
        return None if row is None else (row.model, row.model_version)

    def count_telemetry(self, app: App) -> int:
        with self.engine.connect() as connection:
            return int(
                connection.scalar(
                    select(func.count())
                    .select_from(TelemetryRow)
                    .where(TelemetryRow.app_id == app.id)
                )
                or 0
            )

    def telemetry(
        self,
        app: App,
        start: float | None = None,
        end: float | None = None,
        batch: int = 10_000,
        *,
        service: str | None = None,
        latest: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Samples in time order, streamed (for export), optionally within [start, end) and
        of one service; with ``latest``, only the latest that many, newest first."""
        query = select(*(getattr(TelemetryRow, c) for c in STORED_COLUMNS)).where(
            TelemetryRow.app_id == app.id
        )
        stage_of = {s.name: stage.name for stage in app.structure.stages for s in stage.services}
        if service is not None:
            query = query.where(TelemetryRow.service == service)
        if start is not None:
            query = query.where(TelemetryRow.ts >= start)
        if end is not None:
            query = query.where(TelemetryRow.ts < end)
        with self.engine.connect() as connection:
            if latest is None:
                query = query.order_by(TelemetryRow.ts, TelemetryRow.id)
            else:
                query = query.order_by(TelemetryRow.ts.desc(), TelemetryRow.id.desc())
                query = query.limit(latest)
            result = connection.execution_options(yield_per=batch).execute(query)
            for row in result:
                yield {"stage": stage_of.get(row.service), **row._mapping}


def _lock_partitions(tx: Connection) -> None:
    """Take the partitions' advisory lock for ``tx``, and give its DDL a lock timeout."""
    tx.exec_driver_sql(f"SET LOCAL lock_timeout = '{PARTITION_LOCK_TIMEOUT}'")
    tx.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PARTITION_LOCK})


def _schema_of_telemetry(tx: Connection) -> str:
    return str(
        tx.scalar(
            text(
                "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.oid = 'telemetry'::regclass"
            )
        )
    )


def _partition_days(connection: Connection) -> set[int]:
    """The days whose partitions the telemetry table has (on PostgreSQL)."""
    names = connection.scalars(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'telemetry'::regclass"
        )
    )
    return {day for day in map(_day_of_partition, names) if day is not None}


def _attach_partition(tx: Connection, day: int) -> None:
    """Make ``day``'s partition: a table like telemetry, given the day's rows taken out of
    the default partition, then attached. ATTACH takes a lighter lock on the table than
    CREATE ... PARTITION OF, so batches keep going in to the other partitions meanwhile;
    the CHECK spares it a scan of the new partition."""
    schema = _schema_of_telemetry(tx)
    name = partition_name(day)
    start, end = day * PARTITION_SECONDS, (day + 1) * PARTITION_SECONDS
    columns = ", ".join(("id", "app_id", *STORED_COLUMNS))
    table = f'"{schema}"."{name}"'
    tx.exec_driver_sql(f'CREATE TABLE {table} (LIKE "{schema}".telemetry INCLUDING DEFAULTS)')
    tx.exec_driver_sql(
        f'ALTER TABLE {table} ADD CONSTRAINT "{name}_ts" CHECK (ts >= {start} AND ts < {end})'
    )
    tx.exec_driver_sql(
        f'WITH moved AS (DELETE FROM "{schema}".telemetry_default '
        f"WHERE ts >= {start} AND ts < {end} RETURNING {columns}) "
        f"INSERT INTO {table} ({columns}) SELECT {columns} FROM moved"
    )
    tx.exec_driver_sql(
        f'ALTER TABLE "{schema}".telemetry ATTACH PARTITION {table} '
        f"FOR VALUES FROM ({start}) TO ({end})"
    )
