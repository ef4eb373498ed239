"""The service layer of the registry of models and datasets: who may do what, for Harmonia's
own routes (`harmonia.server.api.routes.catalog`) and HX-MLOps's
(`harmonia.compat.hxmlops`) alike.

Reading a model or dataset needs ``read`` on its domain, or a grant of it to a domain the
caller holds a scope on. Uploads, aliases, energy records and deletions need ``write`` on its
domain; a promotion (``staging`` → ``production``) and a grant need ``admin``, since one puts
a version in front of production traffic and the other shares it outside the domain. The
``production`` alias moves only by promotion, so that every move of it has an approval.
Refused writes are recorded in the audit log (`harmonia.server.domains.Domains.require`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from harmonia.registry.artifacts import StoredObject
from harmonia.registry.catalog import PRODUCTION, Catalog
from harmonia.registry.errors import (
    ArtifactNotFound,
    ArtifactTooLarge,
    ChecksumMismatch,
    RegistryError,
)
from harmonia.registry.metadata import VersionMetadata, parse_ref
from harmonia.server.domains import Domains
from harmonia.server.errors import Forbidden, Invalid
from harmonia.server.principals import Principal
from harmonia.store import Conflict, NotFound, StoreError
from harmonia.store.catalog import AliasMove, Approval, ArtifactVersion

logger = logging.getLogger("harmonia.server.catalog")


class DownloadAborted(RuntimeError):
    """A download found its bytes damaged after its reply had started: the connection is
    dropped before the last chunk (no error reply can be sent any more), so the client
    receives fewer bytes than ``Content-Length`` announced. Not a domain error on purpose:
    no handler may try to answer it."""


class CatalogService:
    """The catalog as requests reach it: each operation checks the caller's scope first."""

    def __init__(self, catalog: Catalog, domains: Domains) -> None:
        self.catalog = catalog
        self.domains = domains
        self.store = catalog.store

    # -- who may do what --------------------------------------------------------------------
    def readers(self, caller: Principal) -> list[str] | None:
        """The domains whose artifacts, and those granted to them, ``caller`` may read
        (None: every domain, for the admin)."""
        return None if caller.admin else sorted(caller.scopes)

    def require_read(self, caller: Principal, domain: str, kind: str, name: str) -> None:
        """`Forbidden` unless ``caller`` may read ``domain``'s ``name``: a scope on the
        domain, or a grant of the artifact to one of the caller's domains."""
        if caller.allows(domain, "read"):
            return
        try:
            artifact = self.store.artifact(domain, kind, name)
        except NotFound:
            artifact = None
        if artifact is not None and self.store.can_read_artifact(artifact.id, list(caller.scopes)):
            return
        mine = ", ".join(sorted(caller.scopes)) or "none"
        raise Forbidden(
            f"reading {kind} {domain}/{name} needs scope 'read' on {domain!r} or a grant of "
            f"it to one of your domains ({mine}); {caller.name} has neither"
        )

    def require(self, caller: Principal, domain: str, scope: str, action: str, what: str) -> None:
        """`Forbidden` (recorded as denied) unless ``caller`` holds ``scope`` on ``domain``."""
        self.domains.require(caller, domain, scope, action, what)

    # -- versions ---------------------------------------------------------------------------
    def version(
        self, caller: Principal, domain: str, kind: str, name: str, ref: str | int
    ) -> ArtifactVersion:
        self.require_read(caller, domain, kind, name)
        return self.catalog.version(domain, kind, name, ref)

    def add(
        self,
        caller: Principal,
        domain: str,
        kind: str,
        name: str,
        stored: StoredObject,
        metadata: VersionMetadata,
        *,
        filename: str,
        media_type: str,
    ) -> ArtifactVersion:
        """Record an uploaded version (its bytes removed if that fails). Lineage must name
        versions the caller may read."""
        try:
            for ref_text, ref_kind in (
                (metadata.trained_on, "dataset"),
                (metadata.retrained_from, kind),
            ):
                if ref_text is not None:
                    owner, _, ref_name, _ = _parse(ref_text, domain, ref_kind)
                    self.require_read(caller, owner, ref_kind, ref_name)
        except BaseException:
            self.catalog.artifacts.delete(stored.key)
            raise
        with _refusal_as_invalid("name"):
            return self.catalog.add(
                domain,
                kind,
                name,
                stored,
                metadata,
                by=caller.name,
                filename=filename,
                media_type=media_type,
            )

    def open(self, version: ArtifactVersion) -> Iterator[bytes]:
        """The version's bytes, checked as they stream; damage is logged and ends the
        stream before its last chunk, so the reader gets less than the announced length."""
        chunks = self.catalog.open(version)

        def logged() -> Iterator[bytes]:
            try:
                yield from chunks
            except ChecksumMismatch as error:
                logger.error("damaged artifact %s at %s", version.ref, version.location)
                raise DownloadAborted(f"{error}; the download was cut short") from error

        return logged()

    def delete(
        self, caller: Principal, domain: str, kind: str, name: str, version: int
    ) -> ArtifactVersion:
        self.require(caller, domain, "write", f"{kind}.delete", f"{kind}:{domain}/{name}")
        return self.catalog.delete(domain, kind, name, version, by=caller.name)

    # -- aliases, promotions, grants --------------------------------------------------------
    def set_alias(
        self,
        caller: Principal,
        domain: str,
        kind: str,
        name: str,
        alias: str,
        version: int | None,
        reason: str,
    ) -> AliasMove:
        what = f"{kind}:{domain}/{name}"
        if alias == PRODUCTION:
            self.require(caller, domain, "admin", f"{kind}.alias", what)
            raise Invalid(
                [
                    {
                        "field": "alias",
                        "reason": "production moves by promotion (POST .../promote), which "
                        "records the approval",
                    }
                ]
            )
        self.require(caller, domain, "write", f"{kind}.alias", what)
        with _refusal_as_invalid("alias"):
            return self.catalog.set_alias(
                domain, kind, name, alias, version, by=caller.name, reason=reason
            )

    def promote(
        self,
        caller: Principal,
        domain: str,
        kind: str,
        name: str,
        *,
        note: str,
        version: int | None,
    ) -> tuple[Approval, AliasMove]:
        """Promote the ``staging`` version to ``production``; ``caller`` approves it and
        needs ``admin`` on the domain."""
        self.require(caller, domain, "admin", f"{kind}.promote", f"{kind}:{domain}/{name}")
        return self.catalog.promote(
            domain, kind, name, approver=caller.name, note=note, version=version
        )

    def grant(self, caller: Principal, domain: str, kind: str, name: str, to_domain: str) -> None:
        self.require(caller, domain, "admin", f"{kind}.grant", f"{kind}:{domain}/{name}")
        with _refusal_as_invalid("domain"):
            self.catalog.grant(domain, kind, name, to_domain, by=caller.name)

    def revoke(self, caller: Principal, domain: str, kind: str, name: str, to_domain: str) -> None:
        self.require(caller, domain, "admin", f"{kind}.revoke_grant", f"{kind}:{domain}/{name}")
        self.catalog.revoke(domain, kind, name, to_domain, by=caller.name)


def _parse(text: str, domain: str, kind: str) -> tuple[str, str, str, str]:
    try:
        return parse_ref(text, domain, kind)
    except ValueError as error:
        raise Invalid([{"field": "metadata", "reason": str(error)}]) from None


@contextmanager
def _refusal_as_invalid(field: str) -> Iterator[None]:
    """A registry's or store's refusal of a value becomes `Invalid` naming ``field``; what
    is missing, in conflict, too large or damaged keeps its own error (and status)."""
    try:
        yield
    except (NotFound, Conflict, ArtifactTooLarge, ArtifactNotFound, ChecksumMismatch):
        raise
    except (RegistryError, StoreError) as error:
        raise Invalid([{"field": field, "reason": str(error)}]) from None
