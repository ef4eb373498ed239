"""The registry of models and datasets per domain: the `Catalog`, over the SQL store (names,
versions, metadata, aliases, grants, energy) and an `ArtifactStore` (the bytes).

An upload streams the bytes into the artifact store first, under a fresh key, while its
sha256 and size are computed; only then is the version row written, with its number taken in
that transaction. A failed row write removes the bytes, so a version is either whole in both
places or in neither. A download streams the bytes back and checks them against the stored
sha256 as they go (`harmonia.registry.artifacts.verified`): damaged bytes raise
`ChecksumMismatch` before the last chunk, so a reader that keeps nothing until the end never
keeps them.

Who may do what (scopes, grants) is the server's to decide; the catalog trusts its caller and
records who it says it is (``by``).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harmonia.energy import EnergyMeter, EnergyReading
from harmonia.registry._storage import check_name
from harmonia.registry.artifacts import ArtifactStore, StoredObject
from harmonia.registry.artifacts import verified as _verified
from harmonia.registry.errors import RegistryError
from harmonia.registry.metadata import LABEL_PATTERN, VersionMetadata, parse_ref
from harmonia.store.catalog import (
    KINDS,
    AliasMove,
    Approval,
    Artifact,
    ArtifactVersion,
    EnergyRun,
    Grant,
    NewVersion,
    ServingEnergy,
    VersionRef,
)

if TYPE_CHECKING:
    from harmonia.store import Store

#: the largest artifact a catalog takes by default (HARMONIA_MAX_ARTIFACT_BYTES)
MAX_ARTIFACT_BYTES = 2 * 1024**3
#: the aliases a promotion moves between
STAGING, PRODUCTION = "staging", "production"
#: how the joules of energy a caller posts were obtained, when no meter of ours read them
REPORTED = "reported"
_LABEL = re.compile(LABEL_PATTERN)


@dataclass(frozen=True)
class VersionEnergy:
    """What a version cost from training to serving: the joules of its training runs,
    evaluations and promotions, and joules per inference in service, per domain."""

    training_j: float
    evaluation_j: float
    promotion_j: float
    runs: list[EnergyRun]
    serving: list[ServingEnergy]


class Catalog:
    """Models and datasets per domain: push, pull, versions, aliases, promotions, grants and
    energy. ``store`` is the SQL store; ``artifacts`` keeps the bytes."""

    def __init__(
        self,
        store: Store,
        artifacts: ArtifactStore,
        *,
        max_bytes: int = MAX_ARTIFACT_BYTES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.artifacts = artifacts
        self.max_bytes = max_bytes
        self.clock = clock

    def __repr__(self) -> str:
        return f"Catalog({self.store.url!r}, {self.artifacts.uri!r})"

    # -- writing versions -------------------------------------------------------------------
    def new_key(self, kind: str) -> str:
        """A fresh key for the bytes of a version about to be uploaded."""
        return f"{_kind(kind)}/{uuid.uuid4().hex}"

    def push(
        self,
        domain: str,
        kind: str,
        name: str,
        chunks: Iterable[bytes],
        metadata: VersionMetadata | None = None,
        *,
        by: str,
        filename: str = "",
        media_type: str = "application/octet-stream",
    ) -> ArtifactVersion:
        """Upload a new version of ``name`` (created by its first version) from ``chunks``;
        its number is the next one. Over the size limit: `ArtifactTooLarge`, nothing kept."""
        _kind(kind)
        check_name(name, kind)
        key = self.new_key(kind)
        stored = self.artifacts.put(key, chunks, max_bytes=self.max_bytes)
        return self.add(
            domain, kind, name, stored, metadata, by=by, filename=filename, media_type=media_type
        )

    def add(
        self,
        domain: str,
        kind: str,
        name: str,
        stored: StoredObject,
        metadata: VersionMetadata | None = None,
        *,
        by: str,
        filename: str = "",
        media_type: str = "application/octet-stream",
    ) -> ArtifactVersion:
        """Record a version whose bytes the artifact store holds already (``stored``); if
        that fails, the bytes are removed."""
        try:
            _kind(kind)
            check_name(name, kind)
            meta = metadata or VersionMetadata()
            new = NewVersion(
                location=stored.key,
                size=stored.size,
                sha256=stored.sha256,
                filename=(filename or name)[:256],
                media_type=media_type[:128],
                details=meta.details(),
                label=meta.label,
                tags=tuple(meta.tags),
                trained_on=self._lineage(meta.trained_on, domain, "dataset"),
                retrained_from=self._lineage(meta.retrained_from, domain, kind),
            )
            return self.store.add_artifact_version(domain, kind, name, new, by=by)
        except BaseException:
            self.artifacts.delete(stored.key)
            raise

    def delete(
        self, domain: str, kind: str, name: str, version: int, *, by: str
    ) -> ArtifactVersion:
        """Remove a version (refused while an alias points at it) and then its bytes."""
        removed = self.store.delete_artifact_version(domain, kind, name, version, by=by)
        self.artifacts.delete(removed.location)
        return removed

    # -- reading ----------------------------------------------------------------------------
    def version(
        self, domain: str, kind: str, name: str, ref: int | str = "latest"
    ) -> ArtifactVersion:
        """A version by number, ``latest``, alias or label."""
        return self.store.artifact_version(domain, _kind(kind), name, ref)

    def versions(
        self, domain: str, kind: str, name: str, *, limit: int = 100, offset: int = 0
    ) -> list[ArtifactVersion]:
        """The versions of an artifact, newest first."""
        return self.store.artifact_versions(domain, _kind(kind), name, limit=limit, offset=offset)

    def artifact(self, domain: str, kind: str, name: str) -> Artifact:
        return self.store.artifact(domain, _kind(kind), name)

    def open(self, version: ArtifactVersion) -> Iterator[bytes]:
        """The version's bytes in chunks, checked against its sha256 and size as they go:
        `ChecksumMismatch` before the end if they were damaged where they are kept."""
        chunks = self.artifacts.open(version.location)
        return _verified(chunks, version.sha256, version.size, str(version.ref))

    def verify(self, version: ArtifactVersion) -> None:
        """Read the whole version back; `ChecksumMismatch` if it is damaged."""
        for _ in self.open(version):
            pass

    # -- aliases, promotions, grants --------------------------------------------------------
    def set_alias(
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
        """Point ``alias`` at ``version`` (None: unset it). ``latest`` names no alias: it
        always resolves to the highest version."""
        _alias(alias)
        return self.store.set_artifact_alias(
            domain, _kind(kind), name, alias, version, by=by, reason=reason
        )

    def promote(
        self,
        domain: str,
        kind: str,
        name: str,
        *,
        approver: str,
        note: str = "",
        version: int | None = None,
    ) -> tuple[Approval, AliasMove]:
        """Move ``production`` to the ``staging`` version, with ``approver``'s approval."""
        return self.store.promote_artifact(
            domain,
            _kind(kind),
            name,
            approver=approver,
            note=note,
            from_alias=STAGING,
            to_alias=PRODUCTION,
            version=version,
        )

    def grant(self, domain: str, kind: str, name: str, to_domain: str, *, by: str) -> Grant:
        return self.store.grant_artifact(domain, _kind(kind), name, to_domain, by=by)

    def revoke(self, domain: str, kind: str, name: str, to_domain: str, *, by: str) -> None:
        self.store.revoke_artifact_grant(domain, _kind(kind), name, to_domain, by=by)

    # -- energy -----------------------------------------------------------------------------
    def record_energy(
        self,
        version: ArtifactVersion,
        phase: str,
        reading: EnergyReading | None = None,
        *,
        joules: float | None = None,
        seconds: float = 0.0,
        source: str = REPORTED,
        by: str,
        detail: str = "",
    ) -> EnergyRun:
        """Record energy spent on ``version`` in ``phase``: an energy meter's ``reading``
        (its source says how it was obtained), or ``joules`` the caller measured."""
        if reading is not None:
            joules, seconds, source = reading.joules, reading.seconds, reading.source
            detail = detail or reading.detail
        if joules is None:
            raise RegistryError("record_energy() needs a reading or joules")
        run = EnergyRun(phase, joules, seconds, source, self.clock(), by, detail[:500])
        return self.store.add_artifact_energy(
            version.domain, version.kind, version.name, version.version, run
        )

    @contextmanager
    def measure(
        self, version: ArtifactVersion, phase: str, meter: EnergyMeter, *, by: str
    ) -> Iterator[None]:
        """Measure the block with ``meter`` and record its energy on ``version``: an
        evaluation or a promotion's checks run through Harmonia's own code."""
        with meter.measure() as measurement:
            yield
        assert measurement.reading is not None
        self.record_energy(version, phase, measurement.reading, by=by)

    def energy(self, version: ArtifactVersion) -> VersionEnergy:
        """What the version cost from training to serving."""
        runs = self.store.artifact_energy(version.id)
        total = dict.fromkeys(("training", "evaluation", "promotion"), 0.0)
        for run in runs:
            total[run.phase] += run.joules
        serving = self.store.serving_energy(version) if version.kind == "model" else []
        return VersionEnergy(
            total["training"], total["evaluation"], total["promotion"], runs, serving
        )

    # -- internals --------------------------------------------------------------------------
    def _lineage(self, text: str | None, domain: str, kind: str) -> VersionRef | None:
        if text is None:
            return None
        owner, _, name, ref = parse_ref(text, domain, kind)
        return self.store.artifact_version(owner, kind, name, ref).ref


def _kind(kind: str) -> str:
    if kind not in KINDS:
        raise RegistryError(f"kind {kind!r}: one of {', '.join(KINDS)}")
    return kind


def _alias(alias: str) -> str:
    if alias == "latest" or alias.isdecimal() or _LABEL.fullmatch(alias) is None:
        raise RegistryError(
            f"alias {alias!r}: a name such as 'staging' or 'production' (not 'latest', not a "
            f"number; {LABEL_PATTERN})"
        )
    return alias
