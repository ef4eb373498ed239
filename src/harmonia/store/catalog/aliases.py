"""Aliases of an artifact (``staging``, ``production``) and every move of them, and
promotions, each with its approval."""

from __future__ import annotations

from sqlalchemy import Connection, delete, insert, select, update

from harmonia.store.audit import add_audit
from harmonia.store.base import StoreBase
from harmonia.store.catalog._lookup import find_artifact_id, resolve_version
from harmonia.store.catalog._types import AliasMove, Approval
from harmonia.store.errors import Conflict, NotFound
from harmonia.store.tables import AliasMoveRow, ApprovalRow, ArtifactAliasRow, ArtifactVersionRow


class ArtifactAliasesMixin(StoreBase):
    """Aliases with their history, and promotions with their approvals."""

    # -- aliases and promotions -------------------------------------------------------------
    def set_artifact_alias(
        self,
        domain: str,
        kind: str,
        name: str,
        alias: str,
        version: int | None,
        *,
        by: str,
        reason: str = "",
    ) -> AliasMove:
        """Point ``alias`` at ``version`` (None: unset it); the move is kept in the history."""
        now = self.clock()
        with self._tx() as tx:
            artifact_id = find_artifact_id(tx, domain, kind, name)
            move = _move_alias(tx, artifact_id, alias, version, now, by, reason, None)
            add_audit(
                tx,
                now,
                by,
                f"{kind}.alias",
                f"{kind}:{domain}/{name}",
                domain=domain,
                detail=f"{alias}: {move.from_version} -> {move.to_version}",
            )
        return move

    def promote_artifact(
        self,
        domain: str,
        kind: str,
        name: str,
        *,
        approver: str,
        note: str = "",
        from_alias: str = "staging",
        to_alias: str = "production",
        version: int | None = None,
    ) -> tuple[Approval, AliasMove]:
        """Move ``to_alias`` to the version ``from_alias`` points at, with the approval
        recorded (who, when, the note). ``version``, when given, must be that version: an
        approval is for what the approver looked at."""
        now = self.clock()
        with self._tx() as tx:
            artifact_id = find_artifact_id(tx, domain, kind, name)
            staged = tx.execute(
                select(ArtifactVersionRow.version)
                .join(ArtifactAliasRow, ArtifactAliasRow.version_id == ArtifactVersionRow.id)
                .where(
                    ArtifactAliasRow.artifact_id == artifact_id,
                    ArtifactAliasRow.alias == from_alias,
                )
            ).scalar()
            if staged is None:
                raise Conflict(
                    f"{kind} {domain}/{name} has no {from_alias!r} version to promote: set "
                    f"the alias {from_alias!r} first"
                )
            if version is not None and version != staged:
                raise Conflict(
                    f"{kind} {domain}/{name}: {from_alias!r} is version {staged}, not {version}"
                )
            approval_id = tx.execute(
                insert(ApprovalRow)
                .values(
                    artifact_id=artifact_id,
                    version=staged,
                    from_alias=from_alias,
                    to_alias=to_alias,
                    approver=approver,
                    ts=now,
                    note=note,
                )
                .returning(ApprovalRow.id)
            ).scalar_one()
            reason = f"promoted from {from_alias}" + (f": {note}" if note else "")
            move = _move_alias(
                tx, artifact_id, to_alias, int(staged), now, approver, reason, approval_id
            )
            add_audit(
                tx,
                now,
                approver,
                f"{kind}.promote",
                f"{kind}:{domain}/{name}@{staged}",
                domain=domain,
                detail=f"{from_alias} -> {to_alias}; approval {approval_id}",
            )
        approval = Approval(
            int(approval_id), int(staged), from_alias, to_alias, approver, now, note
        )
        return approval, move

    def alias_history(
        self, domain: str, kind: str, name: str, alias: str | None = None
    ) -> list[AliasMove]:
        """Every move of the artifact's aliases (or of one), oldest first."""
        with self.engine.connect() as connection:
            artifact_id = find_artifact_id(connection, domain, kind, name)
            query = select(AliasMoveRow).where(AliasMoveRow.artifact_id == artifact_id)
            if alias is not None:
                query = query.where(AliasMoveRow.alias == alias)
            rows = connection.execute(query.order_by(AliasMoveRow.ts, AliasMoveRow.id))
            return [
                AliasMove(
                    r.alias, r.from_version, r.to_version, r.ts, r.moved_by, r.reason, r.approval_id
                )
                for r in rows
            ]

    def approvals(self, domain: str, kind: str, name: str) -> list[Approval]:
        """The approvals of the artifact's promotions, oldest first."""
        with self.engine.connect() as connection:
            artifact_id = find_artifact_id(connection, domain, kind, name)
            rows = connection.execute(
                select(ApprovalRow)
                .where(ApprovalRow.artifact_id == artifact_id)
                .order_by(ApprovalRow.ts, ApprovalRow.id)
            )
            return [
                Approval(r.id, r.version, r.from_alias, r.to_alias, r.approver, r.ts, r.note)
                for r in rows
            ]


def _move_alias(
    tx: Connection,
    artifact_id: int,
    alias: str,
    version: int | None,
    now: float,
    by: str,
    reason: str,
    approval_id: int | None,
) -> AliasMove:
    current = tx.execute(
        select(ArtifactVersionRow.version)
        .join(ArtifactAliasRow, ArtifactAliasRow.version_id == ArtifactVersionRow.id)
        .where(ArtifactAliasRow.artifact_id == artifact_id, ArtifactAliasRow.alias == alias)
    ).scalar()
    key = (ArtifactAliasRow.artifact_id == artifact_id, ArtifactAliasRow.alias == alias)
    if version is None:
        if current is None:
            raise NotFound(f"alias {alias!r} is not set")
        tx.execute(delete(ArtifactAliasRow).where(*key))
    else:
        version_id = resolve_version(tx, artifact_id, version)
        if version_id is None:
            raise NotFound(f"no version {version} to point {alias!r} at")
        if current is None:
            tx.execute(
                insert(ArtifactAliasRow).values(
                    artifact_id=artifact_id, alias=alias, version_id=version_id
                )
            )
        else:
            tx.execute(update(ArtifactAliasRow).where(*key).values(version_id=version_id))
    tx.execute(
        insert(AliasMoveRow).values(
            artifact_id=artifact_id,
            alias=alias,
            from_version=current,
            to_version=version,
            ts=now,
            moved_by=by,
            reason=reason,
            approval_id=approval_id,
        )
    )
    return AliasMove(alias, current, version, now, by, reason, approval_id)
