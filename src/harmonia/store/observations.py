"""Observers per application, version by version, and what their runs found."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, select

from harmonia.store.apps import App
from harmonia.store.base import StoreBase, add_version
from harmonia.store.tables import ObservationRow, ObserversRow

OBSERVATION_COLUMNS = (
    "id",
    "ts",
    "name",
    "observer",
    "size",
    "values",
    "flagged_ts",
    "explanation",
    "error",
)


class ObservationsMixin(StoreBase):
    """Each application's observers and their results."""

    def add_observers(self, app: App, document: dict[str, Any]) -> int:
        """Store a new version of the app's observers (already validated); its version."""
        with self._tx() as tx:
            return add_version(tx, ObserversRow, document, self.clock(), app_id=app.id)

    def observers(self, app: App) -> tuple[int, dict[str, Any]] | None:
        """The observers in force (the latest version) and their version."""
        with self.engine.connect() as connection:
            row = connection.execute(
                select(ObserversRow.version, ObserversRow.document)
                .where(ObserversRow.app_id == app.id)
                .order_by(ObserversRow.version.desc())
                .limit(1)
            ).first()
        return None if row is None else (row.version, dict(row.document))

    def add_observations(self, app: App, rows: Sequence[dict[str, Any]]) -> None:
        """Record observer runs (dicts of the observation columns but ``id``)."""
        if rows:
            with self._tx() as tx:
                tx.execute(insert(ObservationRow), [{**row, "app_id": app.id} for row in rows])

    def observations(
        self, app: App, name: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Observer runs of the app (or of one observer), newest first."""
        query = select(*(getattr(ObservationRow, c) for c in OBSERVATION_COLUMNS)).where(
            ObservationRow.app_id == app.id
        )
        if name is not None:
            query = query.where(ObservationRow.name == name)
        with self.engine.connect() as connection:
            rows = connection.execute(query.order_by(ObservationRow.id.desc()).limit(limit))
            return [dict(r._mapping) for r in rows]
