"""Harmonica's knowledge base in the database, for the Harmonica-compatible API
(`harmonia.compat.harmonica`); it shares the store's engine and write transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select, update

from harmonia.store.base import StoreBase
from harmonia.store.tables import HarmonicaPolicyRow, HarmonicaRecordRow


class HarmonicaStore:
    """Harmonica's knowledge base (policies, telemetry, interventions), kept in the database
    instead of Harmonica's process memory."""

    def __init__(self, store: StoreBase) -> None:
        self.store = store

    def put_policy(self, policy_id: str, document: dict[str, Any]) -> None:
        with self.store._tx() as tx:
            tx.execute(delete(HarmonicaPolicyRow).where(HarmonicaPolicyRow.policy_id == policy_id))
            tx.execute(
                insert(HarmonicaPolicyRow).values(
                    policy_id=policy_id, document=document, created=self.store.clock()
                )
            )

    def policies(self) -> dict[str, dict[str, Any]]:
        with self.store.engine.connect() as connection:
            rows = connection.execute(
                select(HarmonicaPolicyRow).order_by(HarmonicaPolicyRow.created)
            )
            return {row.policy_id: row.document for row in rows}

    def record(self, policy_id: str, kind: str, body: dict[str, Any]) -> int:
        with self.store._tx() as tx:
            return int(
                tx.execute(
                    insert(HarmonicaRecordRow)
                    .values(policy_id=policy_id, kind=kind, ts=self.store.clock(), body=body)
                    .returning(HarmonicaRecordRow.id)
                ).scalar_one()
            )

    def reset(self) -> None:
        """Forget every policy, telemetry message and intervention, as Harmonica's
        ``/api/reset`` empties its knowledge base."""
        with self.store._tx() as tx:
            tx.execute(delete(HarmonicaRecordRow))
            tx.execute(delete(HarmonicaPolicyRow))

    def latest(self, policy_id: str, kind: str = "telemetry") -> tuple[int, dict[str, Any]] | None:
        """The last record of ``kind`` under ``policy_id`` with its id (None if none)."""
        with self.store.engine.connect() as connection:
            row = connection.execute(
                select(HarmonicaRecordRow.id, HarmonicaRecordRow.body)
                .where(HarmonicaRecordRow.policy_id == policy_id, HarmonicaRecordRow.kind == kind)
                .order_by(HarmonicaRecordRow.id.desc())
                .limit(1)
            ).first()
            return (int(row.id), dict(row.body)) if row is not None else None

    def update_record(self, record_id: int, body: dict[str, Any]) -> None:
        with self.store._tx() as tx:
            tx.execute(
                update(HarmonicaRecordRow)
                .where(HarmonicaRecordRow.id == record_id)
                .values(body=body)
            )

    def records(self, policy_id: str, kind: str) -> list[dict[str, Any]]:
        with self.store.engine.connect() as connection:
            rows = connection.execute(
                select(HarmonicaRecordRow.body)
                .where(HarmonicaRecordRow.policy_id == policy_id, HarmonicaRecordRow.kind == kind)
                .order_by(HarmonicaRecordRow.id)
            )
            return [row.body for row in rows]
