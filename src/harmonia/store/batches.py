"""Batch idempotency keys: the reply given to a keyed telemetry batch, kept a day so that a
retry of the same batch gets the same reply instead of storing it twice."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select

from harmonia.store.actions import StoredAction
from harmonia.store.apps import App
from harmonia.store.base import StoreBase
from harmonia.store.tables import BatchKeyRow

#: how long a batch's idempotency key is remembered (a retry comes within minutes)
BATCH_KEY_SECONDS = 24 * 3600
#: keyed batches stored between two purges of expired keys
BATCH_KEY_PURGE_EVERY = 1000

# Built once: SQLAlchemy caches a statement's compiled form by its cache key (see actions).
_INSERT_BATCH_KEY = insert(BatchKeyRow)


class BatchKeysMixin(StoreBase):
    """Replies kept under their batch's idempotency key."""

    #: keyed batches this store has kept (an instance attribute from the first one)
    _keyed = 0

    def _keep_reply(
        self,
        tx: Any,
        app: App,
        key: tuple[str, str],
        accepted: int,
        delivered: list[StoredAction],
    ) -> None:
        now = self.clock()
        reply = {"accepted": accepted, "actions": [a.message() for a in delivered]}
        row = {"app_id": app.id, "key": key[0], "digest": key[1], "created": now, "reply": reply}
        tx.execute(_INSERT_BATCH_KEY, row)
        self._keyed += 1
        if self._keyed % BATCH_KEY_PURGE_EVERY == 0:
            tx.execute(delete(BatchKeyRow).where(BatchKeyRow.created < now - BATCH_KEY_SECONDS))

    def batch_reply(self, app: App, key: str) -> tuple[str, dict[str, Any]] | None:
        """The digest of the batch stored under idempotency ``key`` and the reply it got."""
        with self.engine.connect() as connection:
            row = connection.execute(
                select(BatchKeyRow.digest, BatchKeyRow.reply).where(
                    BatchKeyRow.app_id == app.id, BatchKeyRow.key == key
                )
            ).first()
        return None if row is None else (row.digest, dict(row.reply))
