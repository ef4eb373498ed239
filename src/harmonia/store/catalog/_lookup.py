"""Reads the catalog's writes and reads share, each on a connection or a transaction: names
to ids, a version reference to its row, rows to `ArtifactVersion` (a page at a time)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Select, and_, func, select
from sqlalchemy.orm import aliased

from harmonia.store.catalog._types import STATUSES, Artifact, ArtifactVersion, Grant, VersionRef
from harmonia.store.errors import NotFound, StoreError
from harmonia.store.tables import (
    ArtifactAliasRow,
    ArtifactGrantRow,
    ArtifactRow,
    ArtifactTagRow,
    ArtifactVersionRow,
    DomainRow,
)

_Lineage = aliased(ArtifactVersionRow)
_LineageArtifact = aliased(ArtifactRow)
_LineageDomain = aliased(DomainRow)


def version_query() -> Select[ArtifactVersionRow, str, str, str]:
    return (
        select(
            ArtifactVersionRow,
            ArtifactRow.kind.label("artifact_kind"),
            ArtifactRow.name.label("artifact_name"),
            DomainRow.name.label("artifact_domain"),
        )
        .join(ArtifactRow, ArtifactVersionRow.artifact_id == ArtifactRow.id)
        .join(DomainRow, ArtifactRow.domain_id == DomainRow.id)
    )


def find_domain_id(connection: Connection, name: str) -> int:
    found = connection.scalar(select(DomainRow.id).where(DomainRow.name == name))
    if found is None:
        raise NotFound(f"no domain named {name[:64]!r}")
    return int(found)


def find_artifact_id(connection: Connection, domain: str, kind: str, name: str) -> int:
    found = connection.scalar(
        select(ArtifactRow.id)
        .join(DomainRow, ArtifactRow.domain_id == DomainRow.id)
        .where(DomainRow.name == domain, ArtifactRow.kind == kind, ArtifactRow.name == name)
    )
    if found is None:
        find_domain_id(connection, domain)  # says so when it is the domain that is missing
        raise NotFound(f"domain {domain!r} has no {kind} named {name[:128]!r}")
    return int(found)


def resolve_version(connection: Connection, artifact_id: int, ref: int | str) -> int | None:
    """The id of the version ``ref`` names: a number, ``latest``, an alias or a label."""
    base = select(ArtifactVersionRow.id).where(ArtifactVersionRow.artifact_id == artifact_id)
    if isinstance(ref, int) or (isinstance(ref, str) and ref.isdecimal() and len(ref) < 10):
        found = connection.scalar(base.where(ArtifactVersionRow.version == int(ref)))
        return None if found is None else int(found)
    if ref == "latest":
        found = connection.scalar(base.order_by(ArtifactVersionRow.version.desc()).limit(1))
        return None if found is None else int(found)
    aliased_to = connection.scalar(
        select(ArtifactAliasRow.version_id).where(
            ArtifactAliasRow.artifact_id == artifact_id, ArtifactAliasRow.alias == ref
        )
    )
    if aliased_to is not None:
        return int(aliased_to)
    found = connection.scalar(base.where(ArtifactVersionRow.label == ref))
    return None if found is None else int(found)


def status_filter(status: str) -> Any:
    """Whether a version's status is ``status`` (see `ArtifactVersion.status`)."""
    if status not in STATUSES:
        raise StoreError(f"status {status!r}: one of {', '.join(STATUSES)}")

    def pointed(alias: str) -> Any:
        named = select(ArtifactAliasRow.version_id).where(ArtifactAliasRow.alias == alias)
        return ArtifactVersionRow.id.in_(named)

    if status == "production":
        return pointed("production")
    if status == "staging":
        return and_(pointed("staging"), ~pointed("production"))
    return and_(~pointed("staging"), ~pointed("production"))


def grants_of(connection: Connection, artifact_id: int) -> list[Grant]:
    rows = connection.execute(
        select(DomainRow.name, ArtifactGrantRow.granted, ArtifactGrantRow.granted_by)
        .join(DomainRow, ArtifactGrantRow.domain_id == DomainRow.id)
        .where(ArtifactGrantRow.artifact_id == artifact_id)
        .order_by(DomainRow.name)
    )
    return [Grant(*row) for row in rows]


def artifact_view(connection: Connection, artifact_id: int) -> Artifact:
    row = connection.execute(
        select(ArtifactRow, DomainRow.name.label("domain"))
        .join(DomainRow, ArtifactRow.domain_id == DomainRow.id)
        .where(ArtifactRow.id == artifact_id)
    ).one()
    latest = connection.scalar(
        select(func.max(ArtifactVersionRow.version)).where(
            ArtifactVersionRow.artifact_id == artifact_id
        )
    )
    aliases = connection.execute(
        select(ArtifactAliasRow.alias, ArtifactVersionRow.version)
        .join(ArtifactVersionRow, ArtifactAliasRow.version_id == ArtifactVersionRow.id)
        .where(ArtifactAliasRow.artifact_id == artifact_id)
        .order_by(ArtifactAliasRow.alias)
    )
    return Artifact(
        row.id,
        row.domain,
        row.kind,
        row.name,
        row.created,
        row.created_by,
        None if latest is None else int(latest),
        {a: int(v) for a, v in aliases},
        tuple(g.domain for g in grants_of(connection, artifact_id)),
    )


def version_views(
    connection: Connection, query: Select[ArtifactVersionRow, str, str, str]
) -> list[ArtifactVersion]:
    """The versions ``query`` selects, each with its tags, aliases and lineage (three more
    queries for the whole page, not three per version)."""
    rows = connection.execute(query).all()
    if not rows:
        return []
    ids = [row.id for row in rows]
    tags: dict[int, list[str]] = {}
    for version_id, tag in connection.execute(
        select(ArtifactTagRow.version_id, ArtifactTagRow.tag)
        .where(ArtifactTagRow.version_id.in_(ids))
        .order_by(ArtifactTagRow.tag)
    ):
        tags.setdefault(version_id, []).append(tag)
    aliases: dict[int, list[str]] = {}
    for version_id, alias in connection.execute(
        select(ArtifactAliasRow.version_id, ArtifactAliasRow.alias)
        .where(ArtifactAliasRow.version_id.in_(ids))
        .order_by(ArtifactAliasRow.alias)
    ):
        aliases.setdefault(version_id, []).append(alias)
    linked = {
        i for row in rows for i in (row.trained_on_id, row.retrained_from_id) if i is not None
    }
    refs: dict[int, VersionRef] = {}
    if linked:
        for version_id, version, kind, name, domain in connection.execute(
            select(
                _Lineage.id,
                _Lineage.version,
                _LineageArtifact.kind,
                _LineageArtifact.name,
                _LineageDomain.name,
            )
            .join(_LineageArtifact, _Lineage.artifact_id == _LineageArtifact.id)
            .join(_LineageDomain, _LineageArtifact.domain_id == _LineageDomain.id)
            .where(_Lineage.id.in_(linked))
        ):
            refs[version_id] = VersionRef(domain, kind, name, version)
    return [
        ArtifactVersion(
            id=v.id,
            artifact_id=v.artifact_id,
            domain=v.artifact_domain,
            kind=v.artifact_kind,
            name=v.artifact_name,
            version=v.version,
            label=v.label,
            location=v.location,
            size=v.size,
            sha256=v.sha256,
            filename=v.filename,
            media_type=v.media_type,
            created=v.created,
            created_by=v.created_by,
            details=dict(v.details),
            tags=tuple(tags.get(v.id, ())),
            aliases=tuple(aliases.get(v.id, ())),
            trained_on=refs.get(v.trained_on_id) if v.trained_on_id else None,
            retrained_from=refs.get(v.retrained_from_id) if v.retrained_from_id else None,
        )
        for v in rows
    ]
