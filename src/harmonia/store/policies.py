"""Policies: the versions of each service's policy document, the last one in force."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from harmonia.store.apps import App
from harmonia.store.base import StoreBase, add_version
from harmonia.store.tables import PolicyRow


@dataclass(frozen=True)
class StoredPolicy:
    app: str
    service: str
    version: int
    document: dict[str, Any]
    created: float


class PoliciesMixin(StoreBase):
    """Each service's policy, version by version."""

    def add_policy(self, app: App, service: str, document: dict[str, Any]) -> StoredPolicy:
        """Store a new version of ``service``'s policy (already validated)."""
        created = self.clock()
        with self._tx() as tx:
            version = add_version(tx, PolicyRow, document, created, app_id=app.id, service=service)
        return StoredPolicy(app.name, service, version, document, created)

    def policies(self, app: App, service: str | None = None) -> list[StoredPolicy]:
        """Every version of the policies of the app (or of one service), oldest first; the
        last of a service is in force."""
        query = select(PolicyRow).where(PolicyRow.app_id == app.id)
        if service is not None:
            query = query.where(PolicyRow.service == service)
        with self.engine.connect() as connection:
            rows = connection.execute(query.order_by(PolicyRow.version, PolicyRow.id)).all()
        return [StoredPolicy(app.name, r.service, r.version, r.document, r.created) for r in rows]

    def policy(self, app: App, service: str, version: int | None = None) -> StoredPolicy | None:
        """A version of ``service``'s policy, by default the one in force."""
        query = select(PolicyRow).where(PolicyRow.app_id == app.id, PolicyRow.service == service)
        query = (
            query.where(PolicyRow.version == version)
            if version is not None
            else query.order_by(PolicyRow.version.desc()).limit(1)
        )
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        if row is None:
            return None
        return StoredPolicy(app.name, service, row.version, row.document, row.created)
