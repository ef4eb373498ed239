"""What the catalog's reads return: plain dataclasses, never live ORM objects."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["model", "dataset"]
KINDS: tuple[Kind, ...] = ("model", "dataset")
#: a version's status: the alias among these that points at it, else ``development``
STATUSES = ("production", "staging", "development")
#: what energy is recorded for: the run that produced a version, its evaluation, a promotion
PHASES = ("training", "evaluation", "promotion")


@dataclass(frozen=True)
class VersionRef:
    """A version named by its place: ``vendor/model/lstm@3``."""

    domain: str
    kind: str
    name: str
    version: int

    def __str__(self) -> str:
        return f"{self.domain}/{self.kind}/{self.name}@{self.version}"


@dataclass(frozen=True)
class ArtifactVersion:
    """One version of a model or dataset as the catalog keeps it."""

    id: int
    artifact_id: int
    domain: str
    kind: str
    name: str
    version: int
    label: str | None
    #: the artifact store's key of the bytes
    location: str
    size: int
    sha256: str
    filename: str
    media_type: str
    created: float
    created_by: str
    details: dict[str, Any]
    tags: tuple[str, ...] = ()
    #: the aliases that point here now
    aliases: tuple[str, ...] = ()
    trained_on: VersionRef | None = None
    retrained_from: VersionRef | None = None

    @property
    def ref(self) -> VersionRef:
        return VersionRef(self.domain, self.kind, self.name, self.version)

    @property
    def status(self) -> str:
        """``production`` or ``staging`` if that alias points here, else ``development``."""
        return next((s for s in STATUSES[:2] if s in self.aliases), STATUSES[2])


@dataclass(frozen=True)
class Artifact:
    """A named model or dataset of a domain, its aliases and the domains it is shared with."""

    id: int
    domain: str
    kind: str
    name: str
    created: float
    created_by: str
    #: the highest version number there is (None: no version yet, or all deleted)
    latest: int | None
    aliases: dict[str, int]
    grants: tuple[str, ...]


@dataclass(frozen=True)
class AliasMove:
    """One move of an alias: who, when, from which version to which (None: unset), why."""

    alias: str
    from_version: int | None
    to_version: int | None
    ts: float
    moved_by: str
    reason: str
    approval_id: int | None


@dataclass(frozen=True)
class Approval:
    """Who approved a promotion of a version, when, and their note."""

    id: int
    version: int
    from_alias: str
    to_alias: str
    approver: str
    ts: float
    note: str


@dataclass(frozen=True)
class Grant:
    """Read access to an artifact, granted to another domain."""

    domain: str
    granted: float
    granted_by: str


@dataclass(frozen=True)
class EnergyRun:
    """Energy spent on a version in one phase; ``source`` says how it was obtained."""

    phase: str
    joules: float
    seconds: float
    source: str
    ts: float
    recorded_by: str
    detail: str


@dataclass(frozen=True)
class ServingEnergy:
    """Joules per inference of a version in service, from the telemetry of one domain's
    applications that serve it."""

    domain: str
    samples: int
    joules_per_inference: float


@dataclass(frozen=True)
class NewVersion:
    """What an upload stores about the bytes it has written, and the version's metadata."""

    location: str
    size: int
    sha256: str
    filename: str
    media_type: str
    details: dict[str, Any]
    label: str | None = None
    tags: tuple[str, ...] = ()
    trained_on: VersionRef | None = None
    retrained_from: VersionRef | None = None
