"""The audit log: who (a principal: ``admin``, ``app:<name>``, ``key:<id>``) did what (an
action on a resource), in which domain, when, and how it went.

A write that succeeds writes its entry in its own transaction (`add_audit`), so that an entry
exists if and only if the write does; a refused or failed write is recorded apart
(`AuditMixin.audit`), since it has no transaction of its own to ride on.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, insert, select

from harmonia.store.base import StoreBase
from harmonia.store.tables import AuditRow

#: how a write went: done, refused for want of a scope, or failed (invalid, conflict...)
OUTCOMES = ("ok", "denied", "failed")


@dataclass(frozen=True)
class AuditEntry:
    """One line of the audit log."""

    id: int
    ts: float
    principal: str
    action: str
    resource: str
    domain: str | None
    outcome: str
    detail: str


def add_audit(
    tx: Connection,
    ts: float,
    principal: str,
    action: str,
    resource: str,
    *,
    domain: str | None,
    outcome: str = "ok",
    detail: str = "",
) -> None:
    """An entry of the audit log, written in transaction ``tx``."""
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome {outcome!r}: one of {', '.join(OUTCOMES)}")
    tx.execute(
        insert(AuditRow).values(
            ts=ts,
            principal=principal[:160],
            action=action[:64],
            resource=resource[:256],
            domain=domain,
            outcome=outcome,
            detail=detail[:2000],
        )
    )


class AuditMixin(StoreBase):
    """The audit log, written and read."""

    def audit(
        self,
        principal: str,
        action: str,
        resource: str,
        *,
        domain: str | None,
        outcome: str,
        detail: str = "",
    ) -> None:
        """Record a write that did not happen (refused, invalid): successful writes record
        themselves in their own transaction."""
        with self._tx() as tx:
            add_audit(
                tx,
                self.clock(),
                principal,
                action,
                resource,
                domain=domain,
                outcome=outcome,
                detail=detail,
            )

    def audit_log(self, *, domain: str | None = None, limit: int = 100) -> list[AuditEntry]:
        """The latest ``limit`` entries (of ``domain``, or all), newest first."""
        query = select(AuditRow).order_by(AuditRow.ts.desc(), AuditRow.id.desc()).limit(limit)
        if domain is not None:
            query = query.where(AuditRow.domain == domain)
        with self.engine.connect() as connection:
            return [
                AuditEntry(
                    r.id, r.ts, r.principal, r.action, r.resource, r.domain, r.outcome, r.detail
                )
                for r in connection.execute(query)
            ]
