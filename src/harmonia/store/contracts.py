"""Contracts, version by version, the SLO violations found when they are checked, and where
each SLO stands (kept across restarts, so that an episode is recorded once)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select

from harmonia.store.actions import StoredAction, _add_actions
from harmonia.store.apps import App
from harmonia.store.base import StoreBase, add_version
from harmonia.store.leases import CONTRACT_LEASE, _check_fence
from harmonia.store.tables import ContractRow, SLOStateRow, ViolationRow


@dataclass(frozen=True)
class StoredContract:
    app: str
    version: int
    document: dict[str, Any]
    created: float


@dataclass(frozen=True)
class StoredSLOState:
    """Where one SLO of a contract version stood at its last check."""

    slo: str
    #: met, at_risk, violated or no_data
    status: str
    #: since when it has had that status
    since: float
    #: when it was last checked
    checked: float
    #: the last result (`harmonia.core.contracts.SLOResult.as_dict`)
    result: dict[str, Any]


VIOLATION_COLUMNS = (
    "id",
    "ts",
    "contract_version",
    "slo",
    "scope",
    "target",
    "condition",
    "severity",
    "window",
    "samples",
    "checks",
    "explanation",
    "attribution",
    "action_id",
)


class ContractsMixin(StoreBase):
    """Each application's contract, and its violations."""

    def add_contract(self, app: App, document: dict[str, Any]) -> StoredContract:
        """Store a new version of the app's contract (already validated)."""
        created = self.clock()
        with self._tx() as tx:
            version = add_version(tx, ContractRow, document, created, app_id=app.id)
        return StoredContract(app.name, version, document, created)

    def contract(self, app: App) -> StoredContract | None:
        """The contract in force (its latest version), if the app has one."""
        with self.engine.connect() as connection:
            row = connection.execute(
                select(ContractRow)
                .where(ContractRow.app_id == app.id)
                .order_by(ContractRow.version.desc())
                .limit(1)
            ).first()
        return (
            None
            if row is None
            else StoredContract(app.name, row.version, row.document, row.created)
        )

    def record_violations(
        self,
        app: App,
        violations: Sequence[dict[str, Any]],
        remedies: Sequence[dict[str, Any] | None],
        fence: tuple[str, int] | None = None,
    ) -> tuple[list[int], list[StoredAction]]:
        """Record a check's fresh violations and the actions their SLOs ask for, in one
        transaction: ``remedies[i]`` (None: no action) is the action of ``violations[i]``,
        whose ``action_id`` names it. Returns the violations' ids and the actions stored.

        With ``fence`` (a replica's id and its token on the app's contract lease) the
        transaction ends by checking that the replica still holds that lease, else
        `LeaseLost` and nothing is written: a replica whose checks were taken over during a
        check cannot record an episode that the new holder records too."""
        if len(remedies) != len(violations):
            raise ValueError("one remedy (or None) per violation")
        with self._tx() as tx:
            wanted = [r for r in remedies if r is not None]
            stored = _add_actions(tx, app, wanted) if wanted else []
            decided = iter(stored)
            ids = []
            for violation, remedy in zip(violations, remedies, strict=True):
                action_id = next(decided).id if remedy is not None else None
                statement = insert(ViolationRow).values(
                    app_id=app.id, **{**violation, "action_id": action_id}
                )
                ids.append(int(tx.execute(statement.returning(ViolationRow.id)).scalar_one()))
            if fence is not None:
                _check_fence(tx, app, CONTRACT_LEASE, *fence)
        return ids, stored

    def violations(
        self,
        app: App,
        start: float | None = None,
        end: float | None = None,
        limit: int = 1000,
    ) -> list[dict[str, Any]]:
        """Violations found in [start, end), newest first."""
        query = select(*(getattr(ViolationRow, c) for c in VIOLATION_COLUMNS)).where(
            ViolationRow.app_id == app.id
        )
        if start is not None:
            query = query.where(ViolationRow.ts >= start)
        if end is not None:
            query = query.where(ViolationRow.ts < end)
        with self.engine.connect() as connection:
            rows = connection.execute(query.order_by(ViolationRow.id.desc()).limit(limit)).all()
        return [dict(r._mapping) for r in rows]

    def slo_states(self, app: App, contract_version: int) -> list[StoredSLOState]:
        """Where each SLO of the app's contract ``contract_version`` stood at its last check
        (none before the first check of that version)."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(SLOStateRow)
                .where(
                    SLOStateRow.app_id == app.id,
                    SLOStateRow.contract_version == contract_version,
                )
                .order_by(SLOStateRow.slo)
            ).all()
        return [StoredSLOState(r.slo, r.status, r.since, r.checked, r.result) for r in rows]

    def save_slo_states(
        self, app: App, contract_version: int, states: Sequence[StoredSLOState]
    ) -> None:
        """Replace the stored state of these SLOs of ``contract_version`` in one transaction
        (a delete and an insert: the same on SQLite and PostgreSQL, no upsert dialect)."""
        if not states:
            return
        with self._tx() as tx:
            tx.execute(
                delete(SLOStateRow).where(
                    SLOStateRow.app_id == app.id,
                    SLOStateRow.contract_version == contract_version,
                    SLOStateRow.slo.in_([s.slo for s in states]),
                )
            )
            tx.execute(
                insert(SLOStateRow),
                [
                    {
                        "app_id": app.id,
                        "contract_version": contract_version,
                        "slo": s.slo,
                        "status": s.status,
                        "since": s.since,
                        "checked": s.checked,
                        "result": s.result,
                    }
                    for s in states
                ],
            )
