"""Grants: a domain lets another domain read one of its models or datasets."""

from __future__ import annotations

from sqlalchemy import delete, insert, select

from harmonia.store.audit import add_audit
from harmonia.store.base import StoreBase
from harmonia.store.catalog._lookup import find_artifact_id, find_domain_id, grants_of
from harmonia.store.catalog._types import Grant
from harmonia.store.errors import NotFound, StoreError
from harmonia.store.tables import ArtifactGrantRow


class ArtifactGrantsMixin(StoreBase):
    """Read access to an artifact, granted to other domains."""

    # -- grants -----------------------------------------------------------------------------
    def grant_artifact(
        self, domain: str, kind: str, name: str, to_domain: str, *, by: str
    ) -> Grant:
        """Let ``to_domain`` read the artifact (every version); granting twice is a no-op."""
        if to_domain == domain:
            raise StoreError(f"{domain!r} owns {kind} {name!r}: it needs no grant to read it")
        now = self.clock()
        with self._tx() as tx:
            artifact_id = find_artifact_id(tx, domain, kind, name)
            grantee = find_domain_id(tx, to_domain)
            existing = tx.execute(
                select(ArtifactGrantRow).where(
                    ArtifactGrantRow.artifact_id == artifact_id,
                    ArtifactGrantRow.domain_id == grantee,
                )
            ).first()
            if existing is not None:
                return Grant(to_domain, existing.granted, existing.granted_by)
            tx.execute(
                insert(ArtifactGrantRow).values(
                    artifact_id=artifact_id, domain_id=grantee, granted=now, granted_by=by
                )
            )
            add_audit(
                tx,
                now,
                by,
                f"{kind}.grant",
                f"{kind}:{domain}/{name}",
                domain=domain,
                detail=f"read to {to_domain}",
            )
        return Grant(to_domain, now, by)

    def revoke_artifact_grant(
        self, domain: str, kind: str, name: str, to_domain: str, *, by: str
    ) -> None:
        now = self.clock()
        with self._tx() as tx:
            artifact_id = find_artifact_id(tx, domain, kind, name)
            grantee = find_domain_id(tx, to_domain)
            removed = tx.execute(
                delete(ArtifactGrantRow).where(
                    ArtifactGrantRow.artifact_id == artifact_id,
                    ArtifactGrantRow.domain_id == grantee,
                )
            ).rowcount
            if not removed:
                raise NotFound(f"{to_domain!r} has no grant on {kind} {domain}/{name}")
            add_audit(
                tx,
                now,
                by,
                f"{kind}.revoke_grant",
                f"{kind}:{domain}/{name}",
                domain=domain,
                detail=f"read from {to_domain}",
            )

    def artifact_grants(self, domain: str, kind: str, name: str) -> list[Grant]:
        with self.engine.connect() as connection:
            artifact_id = find_artifact_id(connection, domain, kind, name)
            return grants_of(connection, artifact_id)
