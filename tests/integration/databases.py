"""Databases for tests that run on both backends: SQLite in a temporary folder, or a fresh
PostgreSQL database made for the test and dropped after it."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from harmonia.store import sqlite_url

#: the server tests make their databases through this one (trust auth, as on this machine)
POSTGRES_ADMIN = os.environ.get(
    "HARMONIA_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
BACKENDS = ["sqlite", "postgresql"]


def postgres_unavailable() -> str | None:
    """Why PostgreSQL cannot be used here, or None."""
    try:
        with create_engine(POSTGRES_ADMIN).connect() as connection:
            connection.execute(text("select 1"))
    except OperationalError as error:
        return f"no PostgreSQL at {POSTGRES_ADMIN}: {str(error).splitlines()[0]}"
    return None


def require_postgres() -> None:
    """Skip without PostgreSQL, except in CI, where its tests must run."""
    reason = postgres_unavailable()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the PostgreSQL tests: {reason}")
        pytest.skip(reason)


@contextmanager
def fresh_postgres() -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped afterwards."""
    require_postgres()
    name = f"harmonia_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_ADMIN).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def database(backend: str, tmp_path: Path) -> Iterator[str]:
    """A database URL of ``backend`` ("sqlite" or "postgresql") for one test."""
    if backend == "sqlite":
        yield sqlite_url(tmp_path)
    else:
        with fresh_postgres() as url:
            yield url
