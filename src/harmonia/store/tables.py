"""The database schema (SQLAlchemy 2). Telemetry and actions are append-mostly; telemetry rows
are written with Core bulk inserts, so the ORM classes here are for schema and reads."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Index, Integer, String, UniqueConstraint
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
