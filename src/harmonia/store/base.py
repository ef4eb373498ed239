"""The database under every part of the store: the engine, SQLite's settings and its WAL
checkpointer, the write transaction (`StoreBase._tx`) and the migrations. Each resource's
mixin builds on `StoreBase`; `Store` composes them.

Every write is one transaction: a telemetry batch is stored whole or not at all.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, func, insert, select

logger = logging.getLogger("harmonia.store")
#: how often the SQLite write-ahead log is copied back into the database
CHECKPOINT_SECONDS = 0.5
#: the advisory lock key under which a PostgreSQL database is migrated
_MIGRATION_LOCK = 0x4841524D4F4E49  # "HARMONI"


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
    cursor.execute("PRAGMA synchronous=NORMAL")  # a commit survives a crash of the process
    # No checkpoint inside a commit (it writes back and fsyncs: milliseconds on the request
    # that happens to cross the threshold); the store's checkpointer thread does it instead.
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _alembic_config() -> Config:
    """Alembic's configuration for the store's migrations (no ``alembic.ini``)."""
    config = Config()
    config.set_main_option("script_location", str(resources.files("harmonia.store") / "migrations"))
    return config


@lru_cache(maxsize=1)
def _migrations() -> ScriptDirectory:
    """The store's migration scripts, read once (they are files of the installed package)."""
    return ScriptDirectory.from_config(_alembic_config())


def head_revisions() -> tuple[str, ...]:
    """The newest migration(s) this version of Harmonia knows."""
    return tuple(sorted(_migrations().get_heads()))


def known_revisions() -> frozenset[str]:
    """Every migration this version of Harmonia knows."""
    return frozenset(script.revision for script in _migrations().walk_revisions())


def sqlite_url(data_dir: Path) -> str:
    data_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{data_dir / 'harmonia.db'}"


class StoreBase:
    """One database: its engine, migrated on opening, and its write transaction."""

    def __init__(
        self,
        url: str,
        *,
        clock: Callable[[], float] = time.time,
        telemetry_retention_days: float | None = None,
    ) -> None:
        self.url = url
        self.clock = clock
        #: samples older than this many days are dropped (by whole days on PostgreSQL)
        self.telemetry_retention_days = telemetry_retention_days
        #: serialises the telemetry partitions' upkeep within this process
        self._upkeep_lock = threading.RLock()
        self.engine: Engine = create_engine(
            url, json_serializer=lambda value: orjson.dumps(value).decode()
        )
        self._write_lock: threading.Lock | None = None
        self._closing = threading.Event()
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
            self._write_lock = threading.Lock()
        self.migrate()
        if self._write_lock is not None:
            threading.Thread(
                target=self._checkpoint_every, args=(CHECKPOINT_SECONDS,), daemon=True
            ).start()

    def migrate(self) -> None:
        """Bring the schema to the latest migration (Alembic), idempotently. On PostgreSQL
        under an advisory lock: replicas starting together migrate one after the other."""
        config = _alembic_config()
        with self.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def current_revisions(self) -> tuple[str, ...]:
        """The migration(s) the database is at, as its ``alembic_version`` says (empty: never
        migrated); raises SQLAlchemy's error when the database cannot be reached."""
        with self.engine.connect() as connection:
            heads = MigrationContext.configure(connection).get_current_heads()
        return tuple(sorted(heads))

    def close(self) -> None:
        self._closing.set()
        self.engine.dispose()

    def _checkpoint_every(self, seconds: float) -> None:
        """Copy the WAL back into the database off the request path. PASSIVE never waits
        for readers or writers; whatever it cannot copy now, it copies next time."""
        while not self._closing.wait(seconds):
            try:
                with self.engine.connect() as connection:
                    connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
            except Exception:  # a busy or closing database: try again next time
                logger.debug("WAL checkpoint skipped", exc_info=True)

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        """A write transaction. On SQLite, writers queue on a lock in this process: SQLite
        lets one writer in at a time and makes the others poll with sleeps of up to 25 ms,
        which would put those sleeps into the latency of every request that waits."""
        if self._write_lock is None:
            with self.engine.begin() as connection:
                yield connection
            return
        with self._write_lock, self.engine.begin() as connection:
            yield connection


def add_version(
    tx: Connection, table: Any, document: dict[str, Any], created: float, **key: Any
) -> int:
    """Insert the next version of a versioned document (a policy, a contract, observers)
    under ``key`` (its app, and service), in transaction ``tx``; returns the version."""
    latest = tx.scalar(
        select(func.max(table.version)).where(*(getattr(table, k) == v for k, v in key.items()))
    )
    version = int(latest or 0) + 1
    tx.execute(insert(table).values(**key, version=version, document=document, created=created))
    return version
