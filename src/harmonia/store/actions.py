"""Actions: the decisions recorded for the managed system, their delivery (pulled in a
telemetry reply or pushed to an effector) and what became of them. `_add_actions` and
`_deliver_pending` take an open transaction, so that `Store.ingest` runs them inside its
one commit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, func, insert, or_, select, update

from harmonia.store.apps import App
from harmonia.store.base import StoreBase
from harmonia.store.errors import Conflict, NotFound, StoreError
from harmonia.store.tables import ActionRow

ACTION_STATUSES = ("pending", "delivered", "applied", "failed")


@dataclass(frozen=True)
class StoredAction:
    id: int
    app_id: int
    service: str
    instance: str | None
    kind: str
    model: str | None
    version: int | None
    ts: float
    strategy: str
    reason: str
    trigger: str
    values: dict[str, float]
    context: dict[str, Any]
    status: str
    delivered_at: float | None
    finished_at: float | None
    detail: str

    def message(self) -> dict[str, Any]:
        """The form the sdk receives in a telemetry reply."""
        return {
            "id": self.id,
            "service": self.service,
            "instance": self.instance,
            "kind": self.kind,
            "model": self.model,
            "version": self.version,
            "reason": self.reason,
            "trigger": self.trigger,
            "values": self.values,
        }


# Built once: SQLAlchemy caches a statement's compiled form by its cache key, and a statement
# rebuilt with ``.values(**row)`` per call spends most of a small request computing that key.
_INSERT_ACTION = insert(ActionRow).returning(ActionRow.id)


def _deliver_statement(to_service: Any) -> Any:
    return (
        update(ActionRow)
        .where(
            ActionRow.app_id == bindparam("app"),
            ActionRow.status == "pending",
            to_service,
            or_(ActionRow.instance.is_(None), ActionRow.instance == bindparam("to_instance")),
        )
        .values(status="delivered", delivered_at=bindparam("now"))
        .returning(*(getattr(ActionRow, name) for name in StoredAction.__dataclass_fields__))
    )


# A batch is one service's, nearly always: an expanding IN costs 20 µs per request to render.
_DELIVER_TO_ONE = _deliver_statement(ActionRow.service == bindparam("to_service"))
_DELIVER_TO_MANY = _deliver_statement(ActionRow.service.in_(bindparam("services", expanding=True)))


def _add_actions(tx: Any, app: App, actions: Sequence[dict[str, Any]]) -> list[StoredAction]:
    stored = []
    for action in actions:
        status = "applied" if action["kind"] == "none" else "pending"
        values = {**action, "app_id": app.id, "status": status, "detail": ""}
        action_id = tx.execute(_INSERT_ACTION, values).scalar_one()
        stored.append(
            StoredAction(id=int(action_id), delivered_at=None, finished_at=None, **values)
        )
    return stored


def _deliver_pending(
    tx: Any, app: App, now: float, services: Sequence[str], instance: str | None
) -> list[StoredAction]:
    """Mark the pending actions aimed at ``services`` (and at every instance or at
    ``instance``) delivered, in one statement; oldest first."""
    parameters = {"app": app.id, "now": now, "to_instance": instance}
    if len(services) == 1:
        rows = tx.execute(_DELIVER_TO_ONE, {**parameters, "to_service": services[0]}).all()
    else:
        rows = tx.execute(_DELIVER_TO_MANY, {**parameters, "services": list(services)}).all()
    return sorted((_action(r) for r in rows), key=lambda action: action.id)


def _action(row: Any, **override: Any) -> StoredAction:
    fields = {name: getattr(row, name) for name in StoredAction.__dataclass_fields__}
    fields.update(override)
    return StoredAction(**fields)


class ActionsMixin(StoreBase):
    """Actions: recorded, delivered, finished, listed and counted."""

    def add_actions(self, app: App, actions: Sequence[dict[str, Any]]) -> list[StoredAction]:
        """Record decisions; ``none`` decisions are recorded as applied (nothing to do)."""
        with self._tx() as tx:
            return _add_actions(tx, app, actions)

    def deliver_pending(
        self, app: App, services: Sequence[str], instance: str | None = None
    ) -> list[StoredAction]:
        """Pending actions aimed at ``services`` (at every instance, or at ``instance``),
        marked delivered: pull delivery in the reply to a telemetry batch."""
        with self._tx() as tx:
            return _deliver_pending(tx, app, self.clock(), services, instance)

    def mark_delivered(self, app: App, action_id: int) -> None:
        """A pushed action reached the effector (no-op if it moved on already)."""
        with self._tx() as tx:
            tx.execute(
                update(ActionRow)
                .where(
                    ActionRow.id == action_id,
                    ActionRow.app_id == app.id,
                    ActionRow.status == "pending",
                )
                .values(status="delivered", delivered_at=self.clock())
            )

    def finish_action(
        self, app: App, action_id: int, status: str, detail: str = ""
    ) -> StoredAction:
        """Record what the managed system did with an action: applied or failed."""
        if status not in ("applied", "failed"):
            raise StoreError(f"status must be 'applied' or 'failed', got {status!r}")
        with self._tx() as tx:
            row = tx.execute(
                select(ActionRow).where(ActionRow.id == action_id, ActionRow.app_id == app.id)
            ).first()
            if row is None:
                raise NotFound(f"{app.name} has no action {action_id}")
            if row.status in ("applied", "failed"):
                raise Conflict(f"action {action_id} is already {row.status}")
            tx.execute(
                update(ActionRow)
                .where(ActionRow.id == action_id)
                .values(status=status, finished_at=self.clock(), detail=detail[:2000])
            )
        return self.action(app, action_id)

    def action(self, app: App, action_id: int) -> StoredAction:
        with self.engine.connect() as connection:
            row = connection.execute(
                select(ActionRow).where(ActionRow.id == action_id, ActionRow.app_id == app.id)
            ).first()
        if row is None:
            raise NotFound(f"{app.name} has no action {action_id}")
        return _action(row)

    def actions(
        self,
        app: App,
        status: str | None = None,
        limit: int = 1000,
        start: float | None = None,
        end: float | None = None,
        *,
        service: str | None = None,
    ) -> list[StoredAction]:
        """The app's actions (or one service's), newest first, optionally by status and
        decided in [start, end)."""
        query = select(ActionRow).where(ActionRow.app_id == app.id)
        if service is not None:
            query = query.where(ActionRow.service == service)
        if status is not None:
            if status not in ACTION_STATUSES:
                raise StoreError(f"status must be one of {', '.join(ACTION_STATUSES)}")
            query = query.where(ActionRow.status == status)
        if start is not None:
            query = query.where(ActionRow.ts >= start)
        if end is not None:
            query = query.where(ActionRow.ts < end)
        with self.engine.connect() as connection:
            rows = connection.execute(query.order_by(ActionRow.id.desc()).limit(limit)).all()
        return [_action(r) for r in rows]

    def action_counts(self, app: App, service: str | None = None) -> dict[str, dict[str, int]]:
        """How many actions of each kind the app (or one service) got, by status:
        ``{kind: {status: n}}``."""
        query = select(ActionRow.kind, ActionRow.status, func.count()).where(
            ActionRow.app_id == app.id
        )
        if service is not None:
            query = query.where(ActionRow.service == service)
        with self.engine.connect() as connection:
            rows = connection.execute(query.group_by(ActionRow.kind, ActionRow.status)).all()
        counts: dict[str, dict[str, int]] = {}
        for kind, status, count in rows:
            counts.setdefault(kind, {})[status] = int(count)
        return counts
