"""Windows: the closed aggregation windows of each service, written by `Store.ingest` with
the batch that closed them and read back for the dashboard and the API."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select

from harmonia.store.apps import App
from harmonia.store.base import StoreBase
from harmonia.store.tables import WindowRow

# Built once: SQLAlchemy caches a statement's compiled form by its cache key (see actions).
_INSERT_WINDOW = insert(WindowRow)
WINDOW_COLUMNS = ("service", "start", "end", "model", "version", "count", "signals")


class WindowsMixin(StoreBase):
    """Closed windows, read."""

    def windows(
        self,
        app: App,
        start: float | None = None,
        end: float | None = None,
        limit: int = 1000,
        *,
        service: str | None = None,
    ) -> list[dict[str, Any]]:
        """Closed windows that ended in [start, end), of every service or of one, oldest
        first; the latest ``limit``."""
        query = select(*(getattr(WindowRow, c) for c in WINDOW_COLUMNS)).where(
            WindowRow.app_id == app.id
        )
        if service is not None:
            query = query.where(WindowRow.service == service)
        if start is not None:
            query = query.where(WindowRow.end >= start)
        if end is not None:
            query = query.where(WindowRow.end < end)
        with self.engine.connect() as connection:
            rows = connection.execute(query.order_by(WindowRow.id.desc()).limit(limit)).all()
        return [dict(r._mapping) for r in reversed(rows)]
