"""The infrastructure: the node inventory (each node's `harmonia.orchestration.Node` entry,
kept on the node rows instances register with) and each application's deployments, version by
version. A version an infrastructure tactic proposes is ``pending`` until its action is
carried out (then ``applied``) or fails; the deployment in force is the latest applied."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, null, select, update

from harmonia.store.apps import App
from harmonia.store.base import StoreBase
from harmonia.store.errors import Conflict, NotFound
from harmonia.store.tables import DeploymentRow, NodeRow

DeploymentStatus = str  # "applied" | "pending" | "failed"


@dataclass(frozen=True)
class StoredDeployment:
    """One version of an app's deployment as stored."""

    version: int
    document: dict[str, Any]
    plan: dict[str, Any]
    status: DeploymentStatus
    reason: str
    action_id: int | None
    created: float


class InfrastructureMixin(StoreBase):
    """Node inventory entries and deployments."""

    # -- nodes ---------------------------------------------------------------------------
    def put_node_specs(self, specs: Sequence[dict[str, Any]]) -> None:
        """Store inventory entries (each with its ``name``), creating the nodes that no
        instance has named yet; a node's labels follow its entry's."""
        now = self.clock()
        with self._tx() as tx:
            for spec in specs:
                name = str(spec["name"])
                labels = dict(spec.get("labels") or {})
                found = tx.scalar(select(NodeRow.id).where(NodeRow.name == name))
                if found is None:
                    tx.execute(
                        insert(NodeRow).values(name=name, labels=labels, updated=now, spec=spec)
                    )
                else:
                    tx.execute(
                        update(NodeRow)
                        .where(NodeRow.id == found)
                        .values(spec=spec, labels=labels, updated=now)
                    )

    def node_specs(self) -> list[dict[str, Any]]:
        """The inventory: the entries of the nodes that have one, by name."""
        with self.engine.connect() as tx:
            rows = tx.execute(
                select(NodeRow.spec).where(NodeRow.spec.is_not(None)).order_by(NodeRow.name)
            )
            return [dict(row.spec) for row in rows]

    def remove_node_spec(self, name: str) -> None:
        """Take a node out of the inventory (its row stays for the instances that name it)."""
        with self._tx() as tx:
            done = tx.execute(
                update(NodeRow)
                .where(NodeRow.name == name, NodeRow.spec.is_not(None))
                .values(spec=null(), updated=self.clock())  # SQL NULL, not JSON null
            )
            if not done.rowcount:
                raise NotFound(f"node {name!r} is not in the inventory")

    # -- deployments -----------------------------------------------------------------------
    def add_deployment(
        self,
        app: App,
        document: dict[str, Any],
        plan: dict[str, Any],
        *,
        status: DeploymentStatus,
        reason: str,
        action_id: int | None = None,
    ) -> StoredDeployment:
        """Store the next version of the app's deployment."""
        with self._tx() as tx:
            latest = tx.scalar(
                select(func.max(DeploymentRow.version)).where(DeploymentRow.app_id == app.id)
            )
            version = (latest or 0) + 1
            tx.execute(
                insert(DeploymentRow).values(
                    app_id=app.id,
                    version=version,
                    document=document,
                    plan=plan,
                    status=status,
                    reason=reason[:2000],
                    action_id=action_id,
                    created=self.clock(),
                )
            )
        return self.deployment(app, version)

    def deployment(self, app: App, version: int | None = None) -> StoredDeployment:
        """A version of the app's deployment; by default the one in force (latest applied)."""
        query = select(DeploymentRow).where(DeploymentRow.app_id == app.id)
        if version is None:
            query = query.where(DeploymentRow.status == "applied")
        else:
            query = query.where(DeploymentRow.version == version)
        with self.engine.connect() as tx:
            row = tx.execute(query.order_by(DeploymentRow.version.desc()).limit(1)).first()
        if row is None:
            what = "no deployment" if version is None else f"no deployment version {version}"
            raise NotFound(f"{app.name} has {what}")
        return _stored(row)

    def deployments(self, app: App, limit: int = 100) -> list[StoredDeployment]:
        """The app's deployment versions, newest first."""
        with self.engine.connect() as tx:
            rows = tx.execute(
                select(DeploymentRow)
                .where(DeploymentRow.app_id == app.id)
                .order_by(DeploymentRow.version.desc())
                .limit(limit)
            )
            return [_stored(row) for row in rows]

    def deployments_in_force(self) -> dict[str, StoredDeployment]:
        """Every app's deployment in force, by app name (for the nodes' view)."""
        from harmonia.store.tables import AppRow

        newest = (
            select(DeploymentRow.app_id, func.max(DeploymentRow.version).label("version"))
            .where(DeploymentRow.status == "applied")
            .group_by(DeploymentRow.app_id)
            .subquery()
        )
        with self.engine.connect() as tx:
            rows = tx.execute(
                select(AppRow.name, DeploymentRow)
                .join(DeploymentRow, DeploymentRow.app_id == AppRow.id)
                .join(
                    newest,
                    (newest.c.app_id == DeploymentRow.app_id)
                    & (newest.c.version == DeploymentRow.version),
                )
            )
            return {row[0]: _stored(row) for row in rows}

    def settle_deployment(self, app: App, action_id: int, status: DeploymentStatus) -> None:
        """The action that proposed a pending version was carried out (``applied``) or not
        (``failed``); a version already settled stays as it is."""
        if status not in ("applied", "failed"):
            raise Conflict(f"a deployment settles as applied or failed, not {status!r}")
        with self._tx() as tx:
            tx.execute(
                update(DeploymentRow)
                .where(
                    DeploymentRow.app_id == app.id,
                    DeploymentRow.action_id == action_id,
                    DeploymentRow.status == "pending",
                )
                .values(status=status)
            )


def _stored(row: Any) -> StoredDeployment:
    """A deployments row (its columns, as Core returns them) as a `StoredDeployment`."""
    return StoredDeployment(
        version=row.version,
        document=dict(row.document),
        plan=dict(row.plan),
        status=row.status,
        reason=row.reason,
        action_id=row.action_id,
        created=row.created,
    )
