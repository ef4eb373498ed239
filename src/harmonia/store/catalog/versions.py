"""Versions of models and datasets: uploaded, read by number, ``latest``, alias or label,
listed, searched and deleted; and the artifacts they belong to.

Version numbers come from a counter on the artifact's row, taken and bumped in the
transaction that inserts the version: concurrent uploads of one artifact queue on that row
(PostgreSQL locks it, SQLite has one writer), so they never get the same number, and a number
is never given twice, even after its version was deleted.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import Connection, delete, exists, insert, literal, or_, select, update
from sqlalchemy.exc import IntegrityError

from harmonia.store.audit import add_audit
from harmonia.store.base import StoreBase
from harmonia.store.catalog._lookup import (
    artifact_view,
    find_artifact_id,
    find_domain_id,
    resolve_version,
    status_filter,
    version_query,
    version_views,
)
from harmonia.store.catalog._types import Artifact, ArtifactVersion, NewVersion, VersionRef
from harmonia.store.errors import Conflict, NotFound
from harmonia.store.tables import (
    ArtifactGrantRow,
    ArtifactRow,
    ArtifactTagRow,
    ArtifactVersionRow,
    DomainRow,
)


class ArtifactVersionsMixin(StoreBase):
    """Versions of models and datasets, and the artifacts they belong to."""

    # -- versions ---------------------------------------------------------------------------
    def add_artifact_version(
        self, domain: str, kind: str, name: str, new: NewVersion, *, by: str
    ) -> ArtifactVersion:
        """Store a version whose bytes are written (at ``new.location``); its number is the
        artifact's next. The artifact is created by its first version."""
        now = self.clock()
        try:
            with self._tx() as tx:
                domain_id = find_domain_id(tx, domain)
                artifact_id = _artifact_for_upload(tx, domain_id, kind, name, now, by)
                number = tx.execute(
                    update(ArtifactRow)
                    .where(ArtifactRow.id == artifact_id)
                    .values(next_version=ArtifactRow.next_version + 1)
                    .returning(ArtifactRow.next_version)
                ).scalar_one()
                version = int(number) - 1
                lineage = {
                    "trained_on_id": _lineage_id(tx, new.trained_on, "trained_on"),
                    "retrained_from_id": _lineage_id(tx, new.retrained_from, "retrained_from"),
                }
                version_id = tx.execute(
                    insert(ArtifactVersionRow)
                    .values(
                        artifact_id=artifact_id,
                        version=version,
                        label=new.label,
                        location=new.location,
                        size=new.size,
                        sha256=new.sha256,
                        filename=new.filename,
                        media_type=new.media_type,
                        created=now,
                        created_by=by,
                        details=new.details,
                        **lineage,
                    )
                    .returning(ArtifactVersionRow.id)
                ).scalar_one()
                if new.tags:
                    tx.execute(
                        insert(ArtifactTagRow),
                        [{"version_id": version_id, "tag": t} for t in sorted(set(new.tags))],
                    )
                add_audit(
                    tx,
                    now,
                    by,
                    f"{kind}.push",
                    f"{kind}:{domain}/{name}@{version}",
                    domain=domain,
                    detail=f"size={new.size} sha256={new.sha256}",
                )
        except IntegrityError as error:
            if new.label is not None and "label" in str(error.orig).lower():
                raise Conflict(
                    f"{kind} {domain}/{name} has a version labelled {new.label!r}"
                ) from None
            raise
        return self.artifact_version_by_id(int(version_id))

    def artifact_version_by_id(self, version_id: int) -> ArtifactVersion:
        with self.engine.connect() as connection:
            found = version_views(
                connection, version_query().where(ArtifactVersionRow.id == version_id)
            )
        if not found:
            raise NotFound(f"no artifact version with id {version_id}")
        return found[0]

    def artifact_version(
        self, domain: str, kind: str, name: str, ref: int | str = "latest"
    ) -> ArtifactVersion:
        """A version by number, ``latest``, an alias (``production``) or a label."""
        with self.engine.connect() as connection:
            artifact_id = find_artifact_id(connection, domain, kind, name)
            version_id = resolve_version(connection, artifact_id, ref)
            if version_id is None:
                known = connection.execute(
                    select(ArtifactVersionRow.version)
                    .where(ArtifactVersionRow.artifact_id == artifact_id)
                    .order_by(ArtifactVersionRow.version.desc())
                    .limit(20)
                ).scalars()
                listed = ", ".join(str(v) for v in known) or "none"
                raise NotFound(
                    f"{kind} {domain}/{name} has no version {str(ref)[:64]!r} (a number, "
                    f"'latest', an alias or a label); latest versions: {listed}"
                )
            return version_views(
                connection, version_query().where(ArtifactVersionRow.id == version_id)
            )[0]

    def artifact_versions(
        self, domain: str, kind: str, name: str, *, limit: int = 100, offset: int = 0
    ) -> list[ArtifactVersion]:
        """The versions of an artifact, newest first."""
        with self.engine.connect() as connection:
            artifact_id = find_artifact_id(connection, domain, kind, name)
            query = (
                version_query()
                .where(ArtifactVersionRow.artifact_id == artifact_id)
                .order_by(ArtifactVersionRow.version.desc())
                .limit(limit)
                .offset(offset)
            )
            return version_views(connection, query)

    def search_artifact_versions(
        self,
        *,
        readers: Collection[str] | None,
        kind: str | None = None,
        domain: str | None = None,
        name: str | None = None,
        tag: str | None = None,
        status: str | None = None,
        label: str | None = None,
        version: int | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[ArtifactVersion]:
        """Versions, newest first, among those that ``readers`` (domain names; None: every
        domain) may read: their own domains' and those granted to them."""
        # Filters on the joined artifact and domain rows, not an IN list of artifacts: with
        # no selective filter the database walks versions newest first and stops at
        # ``limit`` (an IN list made it sort all 100,000); with a name, it starts from the
        # name's index instead. Measured in bench/bench_registry.py.
        if tag is not None:
            # a tag's versions newest first from its index (tag, version_id), each checked
            # against the other filters until the page is full: no sort
            newest: Any = ArtifactTagRow.version_id
            query = (
                select(ArtifactTagRow.version_id)
                .join(ArtifactVersionRow, ArtifactVersionRow.id == ArtifactTagRow.version_id)
                .where(ArtifactTagRow.tag == tag)
            )
        else:
            newest = ArtifactVersionRow.id
            query = select(ArtifactVersionRow.id)
        query = query.join(ArtifactRow, ArtifactVersionRow.artifact_id == ArtifactRow.id).join(
            DomainRow, ArtifactRow.domain_id == DomainRow.id
        )
        if readers is not None:
            reader_ids = select(DomainRow.id).where(DomainRow.name.in_(list(readers)))
            granted = select(ArtifactGrantRow.artifact_id).where(
                ArtifactGrantRow.domain_id.in_(reader_ids)
            )
            query = query.where(
                or_(ArtifactRow.domain_id.in_(reader_ids), ArtifactRow.id.in_(granted))
            )
        if kind is not None:
            query = query.where(ArtifactRow.kind == kind)
        if domain is not None:
            query = query.where(DomainRow.name == domain)
        if name is not None:
            query = query.where(ArtifactRow.name == name)
        if label is not None:
            query = query.where(ArtifactVersionRow.label == label)
        if version is not None:
            query = query.where(ArtifactVersionRow.version == version)
        if status is not None:  # few versions carry an alias: they lead
            query = query.where(status_filter(status))
        # ids grow with uploads: newest first without sorting on another column. The ids
        # first (the (artifact, version) index covers them: no row is read to filter), then
        # the page's rows.
        page = query.order_by(newest.desc()).limit(limit).offset(offset)
        with self.engine.connect() as connection:
            ids = list(connection.scalars(page))
            if not ids:
                return []
            rows = version_query().where(ArtifactVersionRow.id.in_(ids))
            return version_views(connection, rows.order_by(ArtifactVersionRow.id.desc()))

    def delete_artifact_version(
        self, domain: str, kind: str, name: str, version: int, *, by: str
    ) -> ArtifactVersion:
        """Remove a version from the catalog (its bytes are the caller's to delete); one an
        alias points at is refused: move the alias first."""
        now = self.clock()
        with self._tx() as tx:
            artifact_id = find_artifact_id(tx, domain, kind, name)
            version_id = resolve_version(tx, artifact_id, version)
            if version_id is None:
                raise NotFound(f"{kind} {domain}/{name} has no version {version}")
            [found] = version_views(tx, version_query().where(ArtifactVersionRow.id == version_id))
            if found.aliases:
                raise Conflict(
                    f"{kind} {domain}/{name}@{version} is {', '.join(found.aliases)}: move "
                    "the alias to another version before deleting this one"
                )
            tx.execute(delete(ArtifactVersionRow).where(ArtifactVersionRow.id == version_id))
            add_audit(
                tx, now, by, f"{kind}.delete", f"{kind}:{domain}/{name}@{version}", domain=domain
            )
        return found

    # -- artifacts --------------------------------------------------------------------------
    def artifact(self, domain: str, kind: str, name: str) -> Artifact:
        with self.engine.connect() as connection:
            return artifact_view(connection, find_artifact_id(connection, domain, kind, name))

    def artifacts(self, domain: str, kind: str) -> list[Artifact]:
        """The domain's models (or datasets), by name."""
        with self.engine.connect() as connection:
            owner = find_domain_id(connection, domain)
            ids = connection.scalars(
                select(ArtifactRow.id)
                .where(ArtifactRow.domain_id == owner, ArtifactRow.kind == kind)
                .order_by(ArtifactRow.name)
            ).all()
            return [artifact_view(connection, i) for i in ids]

    def artifact_by_id(self, artifact_id: int, kind: str | None = None) -> Artifact:
        """The artifact with this id (of ``kind``, when given)."""
        with self.engine.connect() as connection:
            query = select(ArtifactRow.id).where(ArtifactRow.id == artifact_id)
            if kind is not None:
                query = query.where(ArtifactRow.kind == kind)
            if connection.scalar(query) is None:
                raise NotFound(f"no {kind or 'artifact'} with id {artifact_id}")
            return artifact_view(connection, artifact_id)

    def can_read_artifact(self, artifact_id: int, readers: Collection[str]) -> bool:
        """Whether one of the domains ``readers`` owns the artifact or was granted it."""
        reader_ids = select(DomainRow.id).where(DomainRow.name.in_(list(readers)))
        query = select(literal(1)).where(
            or_(
                exists().where(
                    ArtifactRow.id == artifact_id, ArtifactRow.domain_id.in_(reader_ids)
                ),
                exists().where(
                    ArtifactGrantRow.artifact_id == artifact_id,
                    ArtifactGrantRow.domain_id.in_(reader_ids),
                ),
            )
        )
        with self.engine.connect() as connection:
            return connection.scalar(query) is not None


def _artifact_for_upload(
    tx: Connection, domain_id: int, kind: str, name: str, now: float, by: str
) -> int:
    """The artifact's id, created (with its counter at 1) by its first upload; a concurrent
    first upload that created it meanwhile wins, and this one uses it."""
    where = (ArtifactRow.domain_id == domain_id, ArtifactRow.kind == kind, ArtifactRow.name == name)
    found = tx.scalar(select(ArtifactRow.id).where(*where))
    if found is not None:
        return int(found)
    values = {
        "domain_id": domain_id,
        "kind": kind,
        "name": name,
        "next_version": 1,
        "created": now,
        "created_by": by,
    }
    created = insert(ArtifactRow).values(**values).returning(ArtifactRow.id)
    if tx.dialect.name == "sqlite":  # one writer at a time: nobody can have created it
        return int(tx.execute(created).scalar_one())
    try:
        with tx.begin_nested():
            return int(tx.execute(created).scalar_one())
    except IntegrityError:
        return int(tx.execute(select(ArtifactRow.id).where(*where)).scalar_one())


def _lineage_id(tx: Connection, ref: VersionRef | None, field: str) -> int | None:
    if ref is None:
        return None
    artifact_id = tx.scalar(
        select(ArtifactRow.id)
        .join(DomainRow, ArtifactRow.domain_id == DomainRow.id)
        .where(
            DomainRow.name == ref.domain, ArtifactRow.kind == ref.kind, ArtifactRow.name == ref.name
        )
    )
    found = None if artifact_id is None else resolve_version(tx, int(artifact_id), ref.version)
    if found is None:
        raise NotFound(f"{field}: no such version {ref}")
    return found
