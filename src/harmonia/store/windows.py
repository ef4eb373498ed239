"""Windows: the closed aggregation windows of each service, written by `Store.ingest` with
the batch that closed them and read back for the dashboard and the API."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
from sqlalchemy import Select, Text, cast, func, insert, select

from harmonia.store.apps import App
from harmonia.store.base import StoreBase
from harmonia.store.downsample import MAX_POINTS, Grid, buckets_per_service, downsample
from harmonia.store.tables import WindowRow

# Built once: SQLAlchemy caches a statement's compiled form by its cache key (see actions).
_INSERT_WINDOW = insert(WindowRow)
WINDOW_COLUMNS = ("service", "start", "end", "model", "version", "count", "signals")
#: rows fetched per round trip when windows are streamed for downsampling
STREAM_ROWS = 2000


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
            *self._window_filter(app, start, end, service)
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query.order_by(WindowRow.id.desc()).limit(limit)).all()
        return [dict(r._mapping) for r in reversed(rows)]

    def downsampled_windows(
        self,
        app: App,
        start: float | None = None,
        end: float | None = None,
        points: int = 1500,
        *,
        service: str | None = None,
    ) -> list[dict[str, Any]]:
        """The closed windows that ended in [start, end) as at most ``points`` points: the
        windows themselves when there are no more than that, else buckets of equal time per
        service (`harmonia.store.downsample`), ``points // services`` of them each.

        One aggregate query (per service: how many windows, the first and last end) decides,
        then the windows are streamed once, ``STREAM_ROWS`` per round trip (a server-side
        cursor on PostgreSQL), and folded into their bucket as they come: memory holds the
        buckets, not the range. The signals are aggregated in Python rather than SQL because
        they are a JSON object whose keys depend on each service's policy (its operands, its
        drift detectors) and change with it: SQL would need the keys beforehand and a JSON
        function per key, spelled differently on SQLite and PostgreSQL."""
        points = min(max(points, 1), MAX_POINTS)
        where = self._window_filter(app, start, end, service)
        with self.engine.connect() as connection:
            spans = connection.execute(
                select(
                    WindowRow.service,
                    func.count(),
                    func.min(WindowRow.end),
                    func.max(WindowRow.end),
                )
                .where(*where)
                .group_by(WindowRow.service)
            ).all()
        total = sum(int(n) for _, n, _, _ in spans)
        if total <= points:  # nothing to downsample: the windows as they are
            return self.windows(app, start, end, max(total, 1), service=service)
        each = buckets_per_service(points, len(spans))
        grids = {str(s): Grid(float(low), float(high), each) for s, _, low, high in spans}
        return downsample(self._stream_windows(where), grids)

    def _window_filter(
        self, app: App, start: float | None, end: float | None, service: str | None
    ) -> list[Any]:
        """The WHERE clauses of a windows query (the ``ix_windows_app_end`` index serves
        the app and the range)."""
        where: list[Any] = [WindowRow.app_id == app.id]
        if service is not None:
            where.append(WindowRow.service == service)
        if start is not None:
            where.append(WindowRow.end >= start)
        if end is not None:
            where.append(WindowRow.end < end)
        return where

    def _stream_windows(self, where: list[Any]) -> Iterator[dict[str, Any]]:
        """The windows matching ``where``, streamed (never all in memory), their signals
        read from the JSON text with orjson (several times faster than the JSON type's
        default decoder on SQLite, and a row's dictionary is dropped once folded)."""
        columns = [getattr(WindowRow, c) for c in WINDOW_COLUMNS if c != "signals"]
        query: Select[Any] = select(*columns, cast(WindowRow.signals, Text).label("signals"))
        query = query.where(*where).order_by(WindowRow.end)
        with self.engine.connect() as connection:
            result = connection.execution_options(yield_per=STREAM_ROWS).execute(query)
            for service, start, end, model, version, count, text in result.tuples():
                yield {
                    "service": service,
                    "start": start,
                    "end": end,
                    "model": model,
                    "version": version,
                    "count": count,
                    "signals": orjson.loads(text) if text else {},
                }
