"""The database schema (SQLAlchemy 2). Telemetry and actions are append-mostly; telemetry rows
are written with Core bulk inserts, so the ORM classes here are for schema and reads."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class AppRow(Base):
    """A registered application and its probe token; its structure is in stages and services."""

    __tablename__ = "apps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    owner: Mapped[str] = mapped_column(String(128))
    token_hash: Mapped[str] = mapped_column(String(64))
    effector_url: Mapped[str | None] = mapped_column(String(512), nullable=True)
    created: Mapped[float] = mapped_column(Float)
    #: the domain the app belongs to; NULL reads as the ``default`` domain
    domain_id: Mapped[int | None] = mapped_column(ForeignKey("domains.id"), nullable=True)


class OrgRow(Base):
    """An organisation (a vendor, an operator): the owner of domains."""

    __tablename__ = "orgs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    created: Mapped[float] = mapped_column(Float)


class DomainRow(Base):
    """A domain of an organisation (``vendor``, ``operator-production``): what apps, models,
    datasets, keys and grants belong to, with an optional deployment target."""

    __tablename__ = "domains"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    kube_context: Mapped[str | None] = mapped_column(String(256), nullable=True)
    namespace: Mapped[str | None] = mapped_column(String(63), nullable=True)
    created: Mapped[float] = mapped_column(Float)


class ApiKeyRow(Base):
    """An API key of a domain with its scope; only the sha256 of its secret is kept."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"), index=True)
    scope: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(String(128))
    secret_hash: Mapped[str] = mapped_column(String(64))
    created: Mapped[float] = mapped_column(Float)
    created_by: Mapped[str] = mapped_column(String(160))
    expires: Mapped[float | None] = mapped_column(Float, nullable=True)
    rotated: Mapped[float | None] = mapped_column(Float, nullable=True)
    revoked: Mapped[float | None] = mapped_column(Float, nullable=True)


class AuditRow(Base):
    """One write on domains, keys, grants or apps: who, what, on what, when, and how it went."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_domain_ts", "domain", "ts"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ts: Mapped[float] = mapped_column(Float)
    principal: Mapped[str] = mapped_column(String(160))
    action: Mapped[str] = mapped_column(String(64))
    resource: Mapped[str] = mapped_column(String(256))
    domain: Mapped[str | None] = mapped_column(String(64), nullable=True)
    outcome: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(String(2000))


class StageRow(Base):
    """A stage of an application's pipeline; ``after`` names the stages it follows."""

    __tablename__ = "stages"
    __table_args__ = (UniqueConstraint("app_id", "name", name="uq_stages_app_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128))
    position: Mapped[int] = mapped_column(Integer)
    after: Mapped[list[str]] = mapped_column(JSON)


class ServiceRow(Base):
    """A service of a stage: the models it may serve and where its effector listens."""

    __tablename__ = "services"
    __table_args__ = (UniqueConstraint("app_id", "name", name="uq_services_app_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    stage_id: Mapped[int] = mapped_column(ForeignKey("stages.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128))
    position: Mapped[int] = mapped_column(Integer)
    models: Mapped[list[str]] = mapped_column(JSON)
    effector_url: Mapped[str | None] = mapped_column(String(512), nullable=True)


class NodeRow(Base):
    """A machine that instances run on, with labels (accelerator, site, arch...)."""

    __tablename__ = "nodes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    labels: Mapped[dict[str, str]] = mapped_column(JSON)
    updated: Mapped[float] = mapped_column(Float)
    #: the node's inventory entry (`harmonia.orchestration.Node`), once the operator gave it
    spec: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class NodeEnergyRow(Base):
    """A reading of a node's own energy counter: the joules the whole node spent over
    [start, end). Readings of one node do not overlap (the store refuses those that do)."""

    __tablename__ = "node_energy"
    __table_args__ = (UniqueConstraint("node_id", "start", name="uq_node_energy_node_start"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"))
    start: Mapped[float] = mapped_column(Float)
    end: Mapped[float] = mapped_column(Float)
    joules: Mapped[float] = mapped_column(Float)
    received: Mapped[float] = mapped_column(Float)


class InstanceRow(Base):
    """A running instance of a service, on a node once it said which."""

    __tablename__ = "instances"
    __table_args__ = (UniqueConstraint("service_id", "name", name="uq_instances_service_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128))
    node_id: Mapped[int | None] = mapped_column(
        ForeignKey("nodes.id", ondelete="SET NULL"), nullable=True
    )
    registered: Mapped[float] = mapped_column(Float)


class PolicyRow(Base):
    """One version of the policy attached to a service; the highest version is in force."""

    __tablename__ = "policies"
    __table_args__ = (
        UniqueConstraint("app_id", "service", "version", name="uq_policies_app_service_version"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    service: Mapped[str] = mapped_column(String(128))
    version: Mapped[int] = mapped_column(Integer)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    created: Mapped[float] = mapped_column(Float)


class TelemetryRow(Base):
    """One sample, stored as it arrived (append-only)."""

    __tablename__ = "telemetry"
    __table_args__ = (Index("ix_telemetry_app_ts", "app_id", "ts"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    instance: Mapped[str] = mapped_column(String(128))
    service: Mapped[str] = mapped_column(String(128))
    trace_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    model: Mapped[str] = mapped_column(String(128))
    model_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    ts: Mapped[float] = mapped_column(Float)
    latency_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    energy_j: Mapped[float | None] = mapped_column(Float, nullable=True)
    energy_source: Mapped[str | None] = mapped_column(String(32), nullable=True)
    prediction: Mapped[float | None] = mapped_column(Float, nullable=True)
    target: Mapped[float | None] = mapped_column(Float, nullable=True)
    drift_value: Mapped[float | None] = mapped_column(Float, nullable=True)
    metrics: Mapped[dict[str, float]] = mapped_column(JSON)


class ActionRow(Base):
    """A decision aimed at a service (and an instance of it, or all of them) and its
    lifecycle: pending → delivered → applied | failed."""

    __tablename__ = "actions"
    __table_args__ = (Index("ix_actions_app_status", "app_id", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    service: Mapped[str] = mapped_column(String(128))
    instance: Mapped[str | None] = mapped_column(String(128), nullable=True)
    kind: Mapped[str] = mapped_column(String(32))
    model: Mapped[str | None] = mapped_column(String(128), nullable=True)
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    ts: Mapped[float] = mapped_column(Float)
    strategy: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(2000))
    trigger: Mapped[str] = mapped_column(String(500))
    values: Mapped[dict[str, float]] = mapped_column(JSON)
    context: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    delivered_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    detail: Mapped[str] = mapped_column(String(2000), default="")


class WindowRow(Base):
    """One closed window of a service: its span, the model that served, every signal the
    monitor computed (what the boundaries read), so history outlives the server."""

    __tablename__ = "windows"
    __table_args__ = (Index("ix_windows_app_end", "app_id", "end"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    service: Mapped[str] = mapped_column(String(128))
    start: Mapped[float] = mapped_column(Float)
    end: Mapped[float] = mapped_column(Float)
    model: Mapped[str] = mapped_column(String(128))
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    count: Mapped[int] = mapped_column(Integer)
    signals: Mapped[dict[str, float | None]] = mapped_column(JSON)


class ModelVersionRow(Base):
    """A model version the managed system holds, as it described it: the fingerprint of its
    training data and metadata such as held-out quality and energy per inference."""

    __tablename__ = "model_versions"
    __table_args__ = (
        UniqueConstraint(
            "app_id", "service", "model", "version", name="uq_model_versions_service_model"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    service: Mapped[str] = mapped_column(String(128))
    model: Mapped[str] = mapped_column(String(128))
    version: Mapped[int] = mapped_column(Integer)
    created: Mapped[float] = mapped_column(Float)
    fingerprint: Mapped[list[float]] = mapped_column(JSON)
    details: Mapped[dict[str, Any]] = mapped_column(JSON)


class HarmonicaPolicyRow(Base):
    """A policy posted to Harmonica's ``/api/policy``, kept as Harmonica sent it."""

    __tablename__ = "harmonica_policies"

    policy_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    created: Mapped[float] = mapped_column(Float)


class HarmonicaRecordRow(Base):
    """Telemetry and interventions of Harmonica's knowledge base, per policy."""

    __tablename__ = "harmonica_records"
    __table_args__ = (Index("ix_harmonica_records_policy", "policy_id", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    policy_id: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))  # "telemetry" or "intervention"
    ts: Mapped[float] = mapped_column(Float)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)


class ContractRow(Base):
    """One version of an application's contract; the highest version is in force."""

    __tablename__ = "contracts"
    __table_args__ = (UniqueConstraint("app_id", "version", name="uq_contracts_app_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    created: Mapped[float] = mapped_column(Float)


class ViolationRow(Base):
    """An SLO found violated: actual against target, the window, why, and the action taken."""

    __tablename__ = "violations"
    __table_args__ = (Index("ix_violations_app_ts", "app_id", "ts"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    ts: Mapped[float] = mapped_column(Float)
    contract_version: Mapped[int] = mapped_column(Integer)
    slo: Mapped[str] = mapped_column(String(128))
    scope: Mapped[str] = mapped_column(String(16))
    target: Mapped[str | None] = mapped_column(String(128), nullable=True)
    condition: Mapped[str] = mapped_column(String(1000))
    severity: Mapped[str] = mapped_column(String(16))
    window: Mapped[str] = mapped_column(String(64))
    samples: Mapped[int] = mapped_column(Integer)
    checks: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    explanation: Mapped[str] = mapped_column(String(2000))
    attribution: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    action_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


class SLOStateRow(Base):
    """Where an SLO of a contract version stands (met, at risk, violated, no data), since
    when, and its last result: kept so that a restart does not record an episode again."""

    __tablename__ = "slo_states"

    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True)
    contract_version: Mapped[int] = mapped_column(Integer, primary_key=True)
    slo: Mapped[str] = mapped_column(String(128), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    since: Mapped[float] = mapped_column(Float)
    checked: Mapped[float] = mapped_column(Float)
    result: Mapped[dict[str, Any]] = mapped_column(JSON)


class ObserversRow(Base):
    """One version of an application's observers (``observers:`` YAML, as validated)."""

    __tablename__ = "observer_configs"
    __table_args__ = (UniqueConstraint("app_id", "version", name="uq_observer_configs_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    created: Mapped[float] = mapped_column(Float)


class ObservationRow(Base):
    """One observer run: its values, the samples it flagged, why, or its error."""

    __tablename__ = "observations"
    __table_args__ = (Index("ix_observations_app_ts", "app_id", "ts"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    ts: Mapped[float] = mapped_column(Float)
    name: Mapped[str] = mapped_column(String(128))
    observer: Mapped[str] = mapped_column(String(128))
    size: Mapped[int] = mapped_column(Integer)
    values: Mapped[dict[str, float | None]] = mapped_column(JSON)
    flagged_ts: Mapped[list[float]] = mapped_column(JSON)
    explanation: Mapped[str] = mapped_column(String(2000))
    error: Mapped[str | None] = mapped_column(String(2000), nullable=True)


class BatchKeyRow(Base):
    """The idempotency key of a stored telemetry batch and the reply it got, so that a retry
    of the same batch (its reply was lost) is answered without storing it again."""

    __tablename__ = "batch_keys"
    __table_args__ = (
        UniqueConstraint("app_id", "key", name="uq_batch_keys_app_key"),
        Index("ix_batch_keys_created", "created"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(128))
    #: sha256 of the batch, so that a key reused for another batch is told apart
    digest: Mapped[str] = mapped_column(String(64))
    created: Mapped[float] = mapped_column(Float)
    reply: Mapped[dict[str, Any]] = mapped_column(JSON)


class ArtifactRow(Base):
    """A named model or dataset of a domain; ``next_version`` is the number its next upload
    gets, so numbers only increase, even past deleted versions."""

    __tablename__ = "artifacts"
    __table_args__ = (
        UniqueConstraint("domain_id", "kind", "name", name="uq_artifacts_domain_kind_name"),
        Index("ix_artifacts_name", "name"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # "model" or "dataset"
    name: Mapped[str] = mapped_column(String(128))
    next_version: Mapped[int] = mapped_column(Integer)
    created: Mapped[float] = mapped_column(Float)
    created_by: Mapped[str] = mapped_column(String(160))


class ArtifactVersionRow(Base):
    """One immutable version of an artifact: where its bytes are, their size and sha256,
    its metadata and lineage. With `ArtifactRow`'s constraint, (domain, kind, name, version)
    is unique; a label, when given, is unique within the artifact too."""

    __tablename__ = "artifact_versions"
    __table_args__ = (
        UniqueConstraint("artifact_id", "version", name="uq_artifact_versions_version"),
        UniqueConstraint("artifact_id", "label", name="uq_artifact_versions_label"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    artifact_id: Mapped[int] = mapped_column(ForeignKey("artifacts.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    label: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: the artifact store's key of the bytes
    location: Mapped[str] = mapped_column(String(512))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(256))
    media_type: Mapped[str] = mapped_column(String(128))
    created: Mapped[float] = mapped_column(Float)
    created_by: Mapped[str] = mapped_column(String(160))
    #: library, library_version, parameters, characteristics, quality, data_schema...
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: lineage: the dataset version it was trained on, the model version it was retrained from
    trained_on_id: Mapped[int | None] = mapped_column(
        ForeignKey("artifact_versions.id", ondelete="SET NULL"), nullable=True
    )
    retrained_from_id: Mapped[int | None] = mapped_column(
        ForeignKey("artifact_versions.id", ondelete="SET NULL"), nullable=True
    )


class ArtifactTagRow(Base):
    """A tag of a version (``beta``, ``edge``), searched by."""

    __tablename__ = "artifact_tags"
    #: a tag's versions newest first, straight from the index (the search by tag)
    __table_args__ = (Index("ix_artifact_tags_tag", "tag", "version_id"),)

    version_id: Mapped[int] = mapped_column(
        ForeignKey("artifact_versions.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(64), primary_key=True)


class ArtifactAliasRow(Base):
    """Where an alias of an artifact (``staging``, ``production``) points now."""

    __tablename__ = "artifact_aliases"
    __table_args__ = (Index("ix_artifact_aliases_version", "version_id"),)

    artifact_id: Mapped[int] = mapped_column(
        ForeignKey("artifacts.id", ondelete="CASCADE"), primary_key=True
    )
    alias: Mapped[str] = mapped_column(String(64), primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("artifact_versions.id", ondelete="CASCADE"))


class AliasMoveRow(Base):
    """One move of an alias (append-only): who moved it, when, from which version to which,
    and why; a promotion's move names its approval."""

    __tablename__ = "alias_moves"
    __table_args__ = (Index("ix_alias_moves_artifact_ts", "artifact_id", "ts"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    artifact_id: Mapped[int] = mapped_column(ForeignKey("artifacts.id", ondelete="CASCADE"))
    alias: Mapped[str] = mapped_column(String(64))
    from_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    to_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    ts: Mapped[float] = mapped_column(Float)
    moved_by: Mapped[str] = mapped_column(String(160))
    reason: Mapped[str] = mapped_column(Text)
    approval_id: Mapped[int | None] = mapped_column(
        ForeignKey("approvals.id", ondelete="SET NULL"), nullable=True
    )


class ApprovalRow(Base):
    """The approval of a promotion (``staging`` → ``production``): who approved, when, and
    their note."""

    __tablename__ = "approvals"
    __table_args__ = (Index("ix_approvals_artifact_ts", "artifact_id", "ts"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    artifact_id: Mapped[int] = mapped_column(ForeignKey("artifacts.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    from_alias: Mapped[str] = mapped_column(String(64))
    to_alias: Mapped[str] = mapped_column(String(64))
    approver: Mapped[str] = mapped_column(String(160))
    ts: Mapped[float] = mapped_column(Float)
    note: Mapped[str] = mapped_column(String(2000))


class ArtifactGrantRow(Base):
    """A domain's grant of read access to one of its artifacts to another domain."""

    __tablename__ = "artifact_grants"
    __table_args__ = (Index("ix_artifact_grants_domain", "domain_id"),)

    artifact_id: Mapped[int] = mapped_column(
        ForeignKey("artifacts.id", ondelete="CASCADE"), primary_key=True
    )
    domain_id: Mapped[int] = mapped_column(
        ForeignKey("domains.id", ondelete="CASCADE"), primary_key=True
    )
    granted: Mapped[float] = mapped_column(Float)
    granted_by: Mapped[str] = mapped_column(String(160))


class ArtifactEnergyRow(Base):
    """Energy spent on a version: a training run, an evaluation or a promotion's checks,
    with how the joules were obtained (an energy meter's source, or ``reported``)."""

    __tablename__ = "artifact_energy"
    __table_args__ = (Index("ix_artifact_energy_version", "version_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("artifact_versions.id", ondelete="CASCADE"))
    phase: Mapped[str] = mapped_column(String(16))
    joules: Mapped[float] = mapped_column(Float)
    seconds: Mapped[float] = mapped_column(Float)
    source: Mapped[str] = mapped_column(String(32))
    ts: Mapped[float] = mapped_column(Float)
    recorded_by: Mapped[str] = mapped_column(String(160))
    detail: Mapped[str] = mapped_column(String(500))


class DeploymentRow(Base):
    """One version of an application's deployment: the services' requirements and placer
    settings (``document``), the plan, and its status — ``applied`` (in force once no later
    version is), ``pending`` while the action that proposed it is carried out, ``failed``."""

    __tablename__ = "deployments"
    __table_args__ = (UniqueConstraint("app_id", "version", name="uq_deployments_app_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    plan: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    action_id: Mapped[int | None] = mapped_column(
        ForeignKey("actions.id", ondelete="SET NULL"), nullable=True
    )
    created: Mapped[float] = mapped_column(Float)


# Replicas on PostgreSQL (migration 0014; none of these exist on SQLite): the statements that
# use them are in `harmonia.store.leases`. Here for the schema's sake (and for whatever drops
# every table: they hold foreign keys to ``apps``).


class LeaseRow(Base):
    """Which replica owns a service's live loop, under which fencing token, until when (the
    database's clock)."""

    __tablename__ = "leases"

    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True)
    service: Mapped[str] = mapped_column(String(128), primary_key=True)
    owner: Mapped[str] = mapped_column(String(128))
    token: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[float] = mapped_column(Float)
    acquired_at: Mapped[float] = mapped_column(Float)


class LoopInboxRow(Base):
    """A batch a replica that does not own the loop stored, waiting for the owner's loop."""

    __tablename__ = "loop_inbox"
    __table_args__ = (Index("ix_loop_inbox_app_service", "app_id", "service", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    service: Mapped[str] = mapped_column(String(128))
    created: Mapped[float] = mapped_column(Float)
    samples: Mapped[bytes] = mapped_column(LargeBinary)


class ReplicaRow(Base):
    """A replica seen lately, and the apps its event-stream subscribers watch."""

    __tablename__ = "replicas"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    started: Mapped[float] = mapped_column(Float)
    seen: Mapped[float] = mapped_column(Float)
    subscriptions: Mapped[dict[str, bool]] = mapped_column(JSON)


class ReplicaEventRow(Base):
    """A notification between replicas too large for NOTIFY."""

    __tablename__ = "replica_events"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    created: Mapped[float] = mapped_column(Float)
    payload: Mapped[str] = mapped_column(Text)
