"""Request and reply bodies of the registry of models and datasets (apart from
`harmonia.server.schemas`, which holds the applications' and telemetry's)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from harmonia.registry.catalog import VersionEnergy
from harmonia.server.fields import Detail, NonNegative, Reason, Version
from harmonia.store.catalog import AliasMove, Approval, Artifact, ArtifactVersion, Grant

#: the plural in a route (``/domains/{domain}/models``) and the kind it stands for
Kinds = Literal["models", "datasets"]
KIND_OF = {"models": "model", "datasets": "dataset"}
#: ``reported`` (the caller measured it) or an energy meter's source
SOURCE_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"


class VersionOut(BaseModel):
    """A version of a model or dataset: what it is, where it stands, what it came from."""

    domain: str
    kind: str
    name: str
    version: int
    label: str | None
    status: Literal["production", "staging", "development"]
    aliases: list[str]
    tags: list[str]
    size: int
    sha256: str
    filename: str
    media_type: str
    created: float
    created_by: str
    #: library, library_version, parameters, characteristics, quality, energy, data_schema,
    #: fingerprint, training
    metadata: dict[str, Any]
    trained_on: str | None
    retrained_from: str | None


class ArtifactOut(BaseModel):
    """A model or dataset: its latest version, aliases and the domains it is shared with."""

    domain: str
    kind: str
    name: str
    created: float
    created_by: str
    latest: int | None
    aliases: dict[str, int]
    grants: list[str]


class AliasIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: Version
    reason: Reason = ""


class AliasMoveOut(BaseModel):
    alias: str
    from_version: int | None
    to_version: int | None
    ts: float
    moved_by: str
    reason: str
    approval_id: int | None


class AliasesOut(BaseModel):
    """Where each alias points, and every move of them, oldest first."""

    aliases: dict[str, int]
    history: list[AliasMoveOut]


class PromoteIn(BaseModel):
    """The approval of a promotion of the ``staging`` version to ``production``;
    ``version``, when given, must be the staging one (what the approver looked at)."""

    model_config = ConfigDict(extra="forbid")
    note: Reason = ""
    version: Version | None = None


class ApprovalOut(BaseModel):
    id: int
    version: int
    from_alias: str
    to_alias: str
    approver: str
    ts: float
    note: str


class PromotionOut(BaseModel):
    approval: ApprovalOut
    move: AliasMoveOut


class GrantOut(BaseModel):
    domain: str
    granted: float
    granted_by: str


class EnergyIn(BaseModel):
    """Energy spent on a version, measured by the caller: a training run, an evaluation, a
    promotion's checks. ``source`` says how (an energy meter's: ``rapl``, ``nvml``,
    ``estimate``; or ``reported``)."""

    model_config = ConfigDict(extra="forbid")
    phase: Literal["training", "evaluation", "promotion"]
    joules: NonNegative
    seconds: NonNegative = 0.0
    source: str = Field(default="reported", pattern=SOURCE_PATTERN)
    detail: Detail = ""


class EnergyRunOut(BaseModel):
    phase: str
    joules: float
    seconds: float
    source: str
    ts: float
    recorded_by: str
    detail: str


class ServingEnergyOut(BaseModel):
    domain: str
    samples: int
    joules_per_inference: float


class VersionEnergyOut(BaseModel):
    """What a version cost from training to serving: joules of its training, evaluation
    and promotions, and joules per inference in service, per domain."""

    version: VersionOut
    training_j: float
    evaluation_j: float
    promotion_j: float
    runs: list[EnergyRunOut]
    serving: list[ServingEnergyOut]


def version_out(found: ArtifactVersion) -> dict[str, Any]:
    return {
        "domain": found.domain,
        "kind": found.kind,
        "name": found.name,
        "version": found.version,
        "label": found.label,
        "status": found.status,
        "aliases": list(found.aliases),
        "tags": list(found.tags),
        "size": found.size,
        "sha256": found.sha256,
        "filename": found.filename,
        "media_type": found.media_type,
        "created": found.created,
        "created_by": found.created_by,
        "metadata": found.details,
        "trained_on": None if found.trained_on is None else str(found.trained_on),
        "retrained_from": None if found.retrained_from is None else str(found.retrained_from),
    }


def artifact_out(artifact: Artifact) -> dict[str, Any]:
    return {
        "domain": artifact.domain,
        "kind": artifact.kind,
        "name": artifact.name,
        "created": artifact.created,
        "created_by": artifact.created_by,
        "latest": artifact.latest,
        "aliases": artifact.aliases,
        "grants": list(artifact.grants),
    }


def move_out(move: AliasMove) -> dict[str, Any]:
    return dict(move.__dict__)


def approval_out(approval: Approval) -> dict[str, Any]:
    return dict(approval.__dict__)


def grant_out(grant: Grant) -> dict[str, Any]:
    return dict(grant.__dict__)


def energy_out(found: ArtifactVersion, energy: VersionEnergy) -> dict[str, Any]:
    return {
        "version": version_out(found),
        "training_j": energy.training_j,
        "evaluation_j": energy.evaluation_j,
        "promotion_j": energy.promotion_j,
        "runs": [dict(r.__dict__) for r in energy.runs],
        "serving": [dict(s.__dict__) for s in energy.serving],
    }
