"""What the API answers and accepts, as pydantic models: the contract clients and the fuzz
tests (`tests/integration/test_api_fuzz.py`) hold the server to. Every reply has a model here
(``...Out``); routes whose reply costs nothing to validate use it as ``response_model``, the
telemetry route only documents it (``responses=``): it is the benchmarked ingestion path and
returns its dict as it is. What FastAPI cannot infer (error replies, bodies read raw, replies
that are not JSON) is documented in `harmonia.server.openapi`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired

from fastapi.exceptions import RequestValidationError
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
    with_config,
)
from typing_extensions import TypedDict

from harmonia.core.actions import ActionKind
from harmonia.core.application import MAX_STAGES, Application, Stage, ordered_stages
from harmonia.server.fields import (
    AppName,
    Detail,
    Finite,
    Label,
    Name,
    NonNegative,
    Reason,
    ShortText,
    TraceId,
    Version,
)
from harmonia.server.openapi import (
    MAX_BATCH,
    FieldError,
)
from harmonia.server.targets import check_url_shape


# -- replies -----------------------------------------------------------------------------------
class HealthOut(BaseModel):
    status: Literal["ok"]


class ReadyCheck(BaseModel):
    """One condition of readiness: whether it holds, and what was found."""

    ok: bool
    detail: str = Field(examples=["at 0012, head 0012"])


class MigrationsCheck(ReadyCheck):
    current: list[str] = Field(description="the migration(s) the database is at; [] if none")
    head: list[str] = Field(description="the newest migration(s) this server knows")


class ReadyOut(BaseModel):
    """Whether this replica can serve (``/readyz``): the database answers and its schema is
    at the migration this version of the server knows as the newest. A 503 has the same body,
    its ``detail`` naming what is not ready."""

    status: Literal["ready", "not ready"]
    detail: str = Field(
        examples=["migrations not current (at 0011, head 0012)"],
        description="'ready', or each condition that does not hold, joined by '; '",
    )
    database: ReadyCheck
    migrations: MigrationsCheck


class InstanceOut(BaseModel):
    """A registered instance of a service, on its node (with the node's labels)."""

    service: str
    name: str
    node: str | None
    labels: dict[str, str]
    registered: float


class ServiceOut(BaseModel):
    id: int
    name: str
    models: list[str]
    effector_url: str | None = Field(description="where its actions are pushed; null: pulled")
    instances: list[InstanceOut]


class StageOut(BaseModel):
    id: int
    name: str
    after: list[str] = Field(description="the stages whose output it takes")
    services: list[ServiceOut]


class AppOut(BaseModel):
    """A registered application and its structure (its token is never shown again). Stages
    come in topological order."""

    id: int
    name: str
    owner: str
    models: list[str] = Field(description="every model some service may serve")
    stages: list[StageOut]
    effector_url: str | None
    created: float
    domain: str = Field(description="the domain the app belongs to")


class RegisteredAppOut(BaseModel):
    """The reply to a registration: the ids of the app, its stages and its services, and
    the only time the application's token is shown."""

    id: int
    name: str
    domain: str
    stages: dict[str, int]
    services: dict[str, int]
    token: str


class ContractOut(BaseModel):
    """The contract in force, as validated and stored (Harmonia's format, whatever it was
    sent in)."""

    version: int
    document: dict[str, Any]


class ContractStoredOut(BaseModel):
    app: str
    version: int


class CheckOut(BaseModel):
    """One comparison of an SLO's condition: the signal's value against its threshold."""

    signal: str
    op: str
    threshold: float
    value: float | None
    status: str


class AttributionOut(BaseModel):
    """Where a violation comes from: a stage, service, instance, node and its share."""

    stage: str
    service: str | None
    instance: str | None
    node: str | None
    share: float | None
    signal: str
    value: float | None


class SLOResultOut(BaseModel):
    """An SLO as checked: met, at_risk, violated or no_data, with why."""

    slo: str
    scope: str
    target: str | None
    condition: str
    status: str
    severity: str
    then: str | None
    window: str
    samples: int
    checks: list[CheckOut]
    explanation: str | None
    attribution: list[AttributionOut]


class ViolationOut(BaseModel):
    """A recorded violation and the action taken for it (if its SLO names a remedy)."""

    id: int
    ts: float
    contract_version: int
    slo: str
    scope: str
    target: str | None
    condition: str
    severity: str
    window: str
    samples: int
    checks: list[CheckOut]
    explanation: str
    attribution: list[AttributionOut]
    action_id: int | None


class ObserversOut(BaseModel):
    """The observers in force, and how their runs went (``runs``, ``errors``, ``dropped``,
    ``last_error`` per observer); batches the worker skipped when behind."""

    version: int
    document: dict[str, Any]
    stats: dict[str, dict[str, Any]]
    skipped_batches: int


class ObservationOut(BaseModel):
    """One observer run."""

    id: int
    ts: float
    name: str
    observer: str
    size: int
    values: dict[str, float | None]
    flagged_ts: list[float]
    explanation: str
    error: str | None


class EnergyNodeOut(BaseModel):
    """A node an instance of the application runs on: its carbon intensity and where that
    came from, and, if it reports its own energy counter, what the counter says it spent
    over the span and what of that went to this application's samples."""

    carbon_g_per_kwh: float
    carbon_source: str = Field(examples=["node label", "region se", "default"])
    counter_j: float | None = Field(description="null: the node reports no counter")
    apportioned_j: float | None


class EnergyOut(BaseModel):
    """Where an application's energy goes over [start, end): per stage, service or instance
    (``by``), ``total_j``, ``j_per_request``, ``share`` of the pipeline's joules, ``g_co2e``
    and ``g_co2e_per_request``, ``node_j`` (the joules that came from node counters), and
    ``samples``. ``requests`` counts traces (and untraced samples of the first stages), so
    the groups' joules per request add up to the whole's."""

    start: float
    end: float
    samples: int
    by: str
    requests: int
    total_j: float
    total_g_co2e: float
    groups: dict[str, dict[str, float | None]]
    methods: dict[str, list[str]] = Field(
        description="per group, how its joules were obtained: probe, node counter, "
        "apportioned by CPU time, or node counter, apportioned by latency (CPU-time proxy)"
    )
    nodes: dict[str, EnergyNodeOut]


class NodeEnergyIn(BaseModel):
    """What a node's own energy counter (RAPL, NVML, a smart plug) says the whole node
    spent over [start, end): one reporter per node, readings end to end."""

    model_config = ConfigDict(extra="forbid")
    start: Finite
    end: Finite
    joules: NonNegative

    @model_validator(mode="after")
    def _an_interval(self) -> NodeEnergyIn:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class NodeEnergyOut(BaseModel):
    """A node's energy reading, as stored."""

    node: str
    start: float
    end: float
    joules: float


class PipelineOut(BaseModel):
    """Signals of an application over [start, end): per service, per stage (over its
    services and instances) and end to end (over the traces its samples carry)."""

    start: float
    end: float
    samples: int = Field(description="samples read (at most the route's limit)")
    services: dict[str, dict[str, float | None]]
    stages: dict[str, dict[str, float | None]]
    end_to_end: dict[str, float | None]
    instances: dict[str, dict[str, int]] = Field(description="samples per instance, by service")
    models: dict[str, dict[str, float]] = Field(description="each model's share, by service")
    serving: dict[str, str | None] = Field(description="the model each service's loop sees")


class PolicyOut(BaseModel):
    """One version of a service's policy, as validated and stored (JSON)."""

    service: str
    version: int
    document: dict[str, Any]
    created: float


class PolicyStoredOut(BaseModel):
    """A policy was stored as ``version`` of ``service``'s and is in force."""

    app: str
    service: str
    version: int


class ActionMessage(BaseModel):
    """An action as a telemetry reply carries it to the managed system (the sdk's
    `harmonia.sdk.ActionMessage`)."""

    id: int
    service: str = Field(description="the service it aims at")
    instance: str | None = Field(description="the instance it aims at; null: every one")
    kind: ActionKind = Field(description="what the managed system is asked to do")
    model: str | None
    version: int | None
    reason: str
    trigger: str
    values: dict[str, float]


class TelemetryOut(BaseModel):
    """How many samples were stored, and the actions for the system to carry out (pull)."""

    accepted: int
    actions: list[ActionMessage]


class ActionOut(BaseModel):
    """An adaptation event: what was decided, why, and what became of it."""

    id: int
    app_id: int
    service: str = Field(description="the service it aims at")
    instance: str | None = Field(description="the instance it aims at; null: every one")
    kind: ActionKind = Field(description="what the managed system is asked to do")
    model: str | None
    version: int | None
    ts: float
    strategy: str
    reason: str
    trigger: str = Field(description="the policy boundary that fired")
    values: dict[str, float]
    context: dict[str, Any]
    status: str = Field(description="pending, delivered, applied or failed")
    delivered_at: float | None
    finished_at: float | None
    detail: str


class ActionResultOut(BaseModel):
    id: int
    status: str


class WindowOut(BaseModel):
    """A closed decision window: its span, what served, and every signal the monitor
    computed (``null`` where a signal had no value)."""

    service: str
    start: float
    end: float
    model: str
    version: int | None
    count: int
    signals: dict[str, float | None]
    #: a point that stands for several windows (``points=`` on a long range): its span
    #: is theirs, ``count`` their samples, ``model`` the one that served most of them
    downsampled: bool = False
    #: how many closed windows the point stands for (1: a window as it closed)
    windows: int = 1
    #: samples ``model`` served in a downsampled point (null for a window as it closed)
    model_count: int | None = None


class LeaseOut(BaseModel):
    """A lease: a service's live loop (``kind: loop``) or an app's contract checks
    (``kind: contract``, no service), its fencing token and when it expires (the database's
    clock); ``here``: whether the replica answering holds it."""

    app: str
    service: str | None
    kind: Literal["loop", "contract"]
    token: int
    acquired_at: float
    expires_at: float
    expired: bool
    here: bool


class ReplicaOut(BaseModel):
    """A replica seen lately (``alive``), or one that still holds leases (a dead one whose
    leases are about to be taken over), with its leases."""

    id: str
    this: bool
    alive: bool
    started: float | None
    seen: float | None
    leases: list[LeaseOut]


class ReplicasOut(BaseModel):
    """The replicas over the database and who owns what. ``replicas: false`` for a single
    server (SQLite, or leases turned off): it runs every loop and every contract check
    itself, and holds no lease."""

    replicas: bool
    this: str | None = Field(description="the id of the replica answering")
    lease_seconds: float | None = None
    now: float | None = Field(default=None, description="the database's clock")
    detail: str = ""
    items: list[ReplicaOut] = Field(default_factory=list)


class VersionOut(BaseModel):
    """A model version as the managed system described it."""

    service: str
    model: str
    version: int
    created: float
    details: dict[str, float | bool | str | None]
    fingerprint_size: int


class ProfileOut(BaseModel):
    """What a model achieved in the windows it served (``null``: not measured yet)."""

    windows: int
    score: float | None
    quality: float | None
    energy_j: float | None
    latency_ms: float | None


class ModelOut(BaseModel):
    """A model of one service: its versions, whether it serves, what it achieved."""

    service: str
    model: str
    versions: list[VersionOut]
    in_service: bool
    current_version: int | None
    profile: ProfileOut | None


# -- the dashboard's replies -----------------------------------------------------------------
class AdminOut(BaseModel):
    admin: bool


class PresetOut(BaseModel):
    """A shipped example policy, as text (comments kept), and what it governs."""

    name: str
    system: str
    strategy: str
    models: list[str]
    harmonica: bool
    text: str


class PolicyTextOut(BaseModel):
    yaml: str
    json_text: str = Field(alias="json")


class PolicyCheckOut(BaseModel):
    """A policy checked without storing it: its issues, or the policy and its text in both
    formats (then only)."""

    valid: bool
    issues: list[FieldError]
    policy: dict[str, Any] | None = None
    text: PolicyTextOut | None = None


class WindowSignalsOut(BaseModel):
    end: float
    count: int
    signals: dict[str, float | None]


class DriftOut(BaseModel):
    value: float | None
    drifted: bool


class AppStatusOut(BaseModel):
    """An application as the dashboard's overview shows it: one of its services (the live
    view is a service's)."""

    name: str
    owner: str
    service: str = Field(description="the service shown")
    services: list[str] = Field(description="every service of the application")
    models: list[str] = Field(description="the models the service shown may serve")
    policy_version: int | None
    strategy: str | None
    quality: str | None
    model: str | None
    version: int | None
    window: WindowSignalsOut | None
    drift: dict[str, DriftOut]
    drift_detectors: list[str] = Field(
        default_factory=list,
        description="the drift detectors the policy and its strategy read (none: no drift "
        "is measured)",
    )
    drift_watch: str | None = Field(
        default=None, description="the sample field the drift detectors compare"
    )
    violations: list[str]
    actions: dict[str, int]
    open_actions: int
    running: list[int]
    latest_action: ActionOut | None


class RunOut(BaseModel):
    """A process the server started: a reference system run live, or an experiment."""

    id: int
    kind: Literal["system", "experiment"]
    system: str
    app: str | None
    status: str = Field(description="running, finished, failed or stopped")
    started: float
    ended: float | None
    exit_code: int | None
    out: str | None
    log_tail: str


class ExperimentOut(BaseModel):
    """A replay-lab experiment: finished (its results can be read) or still running."""

    id: str | None
    status: str
    run: RunOut | None


#: the 200 of ``GET /api/v1/experiments/{experiment}``: the results file as it was written
EXPERIMENT_RESULTS: dict[str, Any] = {
    "description": "The experiment's results.json: approaches, frontier, timelines",
    "content": {"application/json": {"schema": {"type": "object", "additionalProperties": True}}},
}


# -- Harmonica's replies ---------------------------------------------------------------------
class HarmonicaMessageOut(BaseModel):
    message: str


# -- request bodies: what the routes validate ---------------------------------------------
class ServiceIn(BaseModel):
    """A service of the one-stage form: it serves every model the app lists."""

    model_config = ConfigDict(extra="forbid")
    name: Name
    instances: list[Name] = Field(default_factory=list, max_length=1000)


class AppIn(BaseModel):
    """An application: a pipeline of ``stages``, or the one-stage form, ``models`` (and
    optionally ``services``, each serving them all; one named ``default`` if none)."""

    model_config = ConfigDict(extra="forbid")
    name: AppName
    owner: ShortText
    stages: list[Stage] | None = Field(default=None, min_length=1, max_length=MAX_STAGES)
    models: list[Name] | None = Field(default=None, min_length=1, max_length=100)
    services: list[ServiceIn] = Field(default_factory=list, max_length=100)
    effector_url: str | None = Field(default=None, max_length=512)
    #: the domain the app belongs to (`docs/domains.md`); None: the ``default`` domain
    domain: AppName | None = None

    @field_validator("effector_url")
    @classmethod
    def _target(cls, url: str | None) -> str | None:
        # the link-local rule needs the server's settings: `Server.register` checks it
        return None if url is None else check_url_shape(url)

    @field_validator("stages")
    @classmethod
    def _a_pipeline(cls, stages: list[Stage] | None) -> list[Stage] | None:
        if stages is None:
            return None
        for stage in stages:
            for service in stage.services:
                if service.effector_url is not None:
                    check_url_shape(service.effector_url)
        return ordered_stages(stages)

    @model_validator(mode="after")
    def _one_form(self) -> AppIn:
        if (self.stages is None) == (self.models is None):
            raise ValueError("give stages (a pipeline) or models (one stage), not both or neither")
        if self.stages is not None and self.services:
            raise ValueError("with stages, services are declared inside each stage")
        return self

    def structure(self) -> Application:
        if self.stages is None:
            assert self.models is not None
            return Application.single(
                self.name,
                self.models,
                owner=self.owner,
                services=[s.model_dump() for s in self.services],
                effector_url=self.effector_url,
            )
        return Application(
            name=self.name, owner=self.owner, effector_url=self.effector_url, stages=self.stages
        )


class InstanceIn(BaseModel):
    """An instance of a service says it runs, and on which node (with the node's labels:
    accelerator, site, architecture...)."""

    model_config = ConfigDict(extra="forbid")
    name: Name
    node: Name | None = None
    labels: dict[Name, Label] | None = Field(default=None, max_length=64)


@with_config(ConfigDict(extra="forbid"))
class SampleIn(TypedDict):
    """One telemetry sample as the sdk sends it (the app and instance come with the batch).

    A TypedDict, not a model: pydantic-core validates it straight from JSON into the dict the
    store inserts, several times faster than building and dumping a model per sample.
    """

    model: Name
    ts: Finite
    stage: NotRequired[Name | None]
    service: NotRequired[Name]
    trace_id: NotRequired[TraceId | None]
    model_version: NotRequired[Version | None]
    latency_ms: NotRequired[NonNegative | None]
    energy_j: NotRequired[NonNegative | None]
    energy_source: NotRequired[Label | None]
    prediction: NotRequired[Finite | None]
    target: NotRequired[Finite | None]
    drift_value: NotRequired[Finite | None]
    metrics: NotRequired[Annotated[dict[Name, Finite], Field(max_length=100)]]


@with_config(ConfigDict(extra="forbid"))
class BatchIn(TypedDict):
    instance: NotRequired[Name]
    samples: Annotated[list[SampleIn], Field(min_length=1, max_length=MAX_BATCH)]


_Column = Field(max_length=MAX_BATCH)


@with_config(ConfigDict(extra="forbid"))
class ColumnsIn(TypedDict):
    """A batch's samples as columns: each field of `SampleIn` a list of the same length,
    value ``i`` of every column being sample ``i``; null is a sample's "not given" in any
    column (its default: ``service`` "default", ``metrics`` none). pydantic-core checks a
    list of numbers in one tight loop, several times faster than the same values spread
    over objects, and the server builds each row from what varies between samples only."""

    model: Annotated[list[Name], Field(min_length=1, max_length=MAX_BATCH)]
    ts: Annotated[list[Finite], Field(min_length=1, max_length=MAX_BATCH)]
    stage: NotRequired[Annotated[list[Name | None], _Column]]
    service: NotRequired[Annotated[list[Name | None], _Column]]
    trace_id: NotRequired[Annotated[list[TraceId | None], _Column]]
    model_version: NotRequired[Annotated[list[Version | None], _Column]]
    latency_ms: NotRequired[Annotated[list[NonNegative | None], _Column]]
    energy_j: NotRequired[Annotated[list[NonNegative | None], _Column]]
    energy_source: NotRequired[Annotated[list[Label | None], _Column]]
    prediction: NotRequired[Annotated[list[Finite | None], _Column]]
    target: NotRequired[Annotated[list[Finite | None], _Column]]
    drift_value: NotRequired[Annotated[list[Finite | None], _Column]]
    metrics: NotRequired[
        Annotated[list[Annotated[dict[Name, Finite], Field(max_length=100)] | None], _Column]
    ]


@with_config(ConfigDict(extra="forbid"))
class ColumnBatchIn(TypedDict):
    """A telemetry batch in columns (``{"instance": ..., "columns": {...}}``), the form the
    sdk sends; the row form (`BatchIn`) stays accepted."""

    instance: NotRequired[Name]
    columns: ColumnsIn


SAMPLE_DEFAULTS: dict[str, Any] = {
    "stage": None,
    "service": "default",
    "trace_id": None,
    "model_version": None,
    "latency_ms": None,
    "energy_j": None,
    "energy_source": None,
    "prediction": None,
    "target": None,
    "drift_value": None,
    "metrics": {},
}


class VersionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    service: Name | None = Field(
        default=None, description="whose version; needed only when several services serve it"
    )
    fingerprint: list[Finite] = Field(default_factory=list, max_length=4096)
    details: dict[Name, Finite | bool | Detail | None] = Field(default_factory=dict, max_length=100)
    created: Finite | None = None


class ResultIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["applied", "failed"]
    reason: Reason = ""


BATCH = TypeAdapter(BatchIn)
COLUMN_BATCH = TypeAdapter(ColumnBatchIn)
#: a batch as the OpenAPI schema shows it (the route validates the raw body itself)
BATCH_EXAMPLE = {
    "instance": "edge-1",
    "samples": [
        {
            "model": "lstm",
            "model_version": 1,
            "ts": 1767225600.0,
            "latency_ms": 2.1,
            "energy_j": 0.004,
            "energy_source": "estimate",
            "prediction": 101.5,
            "target": 99.0,
        }
    ],
}


def field_errors(error: ValidationError | RequestValidationError) -> list[dict[str, Any]]:
    """Pydantic's errors as {field, reason}: ``samples[3].energy_j``."""
    out = []
    for item in error.errors():
        path = ""
        for part in item["loc"]:
            if part == "body":
                continue
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        out.append({"field": path, "reason": str(item["msg"]).removeprefix("Value error, ")})
    return out
