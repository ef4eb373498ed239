"""What the API answers and accepts, as pydantic models: the contract clients and the fuzz
tests (`tests/integration/test_api_fuzz.py`) hold the server to. Every reply has a model
(``...Out``); routes whose reply costs nothing to validate use it as ``response_model``, the
telemetry route only documents it (``responses=``): it is the benchmarked ingestion path and
returns its dict as it is. What FastAPI cannot infer (error replies, bodies read raw, replies
that are not JSON) is documented in `harmonia.server.openapi`.

The models live beside this module, split by the routes they serve, so that each group can
be read with its routes: `app_schemas` (applications, policies, actions),
`telemetry_schemas`, `contract_schemas` (contracts, observers), `observe_schemas` (windows,
pipeline, energy), `health_schemas` (health, readiness, replicas) and `dashboard_schemas`
(the dashboard, its runs and experiments); `catalog_schemas` and `domain_schemas` hold the
registry's and the organisations'. This module re-exports the first six, so that importing
from it keeps working. It holds `field_errors`, which every group's errors go through,
Harmonica's plain message, and the model versions' bodies: the OpenAPI document names their
`VersionOut` after this module (the catalog has one too), so moving it would rename it.
"""

from __future__ import annotations

from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harmonia.server.app_schemas import (
    ActionOut,
    ActionResultOut,
    AppIn,
    AppOut,
    InstanceIn,
    InstanceOut,
    PolicyOut,
    PolicyStoredOut,
    RegisteredAppOut,
    ResultIn,
    ServiceIn,
    ServiceOut,
    StageOut,
)
from harmonia.server.contract_schemas import (
    AttributionOut,
    CheckOut,
    ContractOut,
    ContractStoredOut,
    ObservationOut,
    ObserversOut,
    SLOResultOut,
    ViolationOut,
)
from harmonia.server.dashboard_schemas import (
    EXPERIMENT_RESULTS,
    AdminOut,
    AppStatusOut,
    DriftOut,
    ExperimentOut,
    PolicyCheckOut,
    PolicyTextOut,
    PresetOut,
    RunOut,
    WindowSignalsOut,
)
from harmonia.server.fields import Detail, Finite, Name
from harmonia.server.health_schemas import (
    HealthOut,
    LeaseOut,
    MigrationsCheck,
    ReadyCheck,
    ReadyOut,
    ReplicaOut,
    ReplicasOut,
)
from harmonia.server.observe_schemas import (
    EnergyNodeOut,
    EnergyOut,
    NodeEnergyIn,
    NodeEnergyOut,
    PipelineOut,
    WindowOut,
)
from harmonia.server.telemetry_schemas import (
    BATCH,
    BATCH_EXAMPLE,
    COLUMN_BATCH,
    SAMPLE_DEFAULTS,
    ActionMessage,
    BatchIn,
    ColumnBatchIn,
    ColumnsIn,
    SampleIn,
    TelemetryOut,
)

__all__ = [
    "BATCH",
    "BATCH_EXAMPLE",
    "COLUMN_BATCH",
    "EXPERIMENT_RESULTS",
    "SAMPLE_DEFAULTS",
    "ActionMessage",
    "ActionOut",
    "ActionResultOut",
    "AdminOut",
    "AppIn",
    "AppOut",
    "AppStatusOut",
    "AttributionOut",
    "BatchIn",
    "CheckOut",
    "ColumnBatchIn",
    "ColumnsIn",
    "ContractOut",
    "ContractStoredOut",
    "DriftOut",
    "EnergyNodeOut",
    "EnergyOut",
    "ExperimentOut",
    "HarmonicaMessageOut",
    "HealthOut",
    "InstanceIn",
    "InstanceOut",
    "LeaseOut",
    "MigrationsCheck",
    "ModelOut",
    "NodeEnergyIn",
    "NodeEnergyOut",
    "ObservationOut",
    "ObserversOut",
    "PipelineOut",
    "PolicyCheckOut",
    "PolicyOut",
    "PolicyStoredOut",
    "PolicyTextOut",
    "PresetOut",
    "ProfileOut",
    "ReadyCheck",
    "ReadyOut",
    "RegisteredAppOut",
    "ReplicaOut",
    "ReplicasOut",
    "ResultIn",
    "RunOut",
    "SLOResultOut",
    "SampleIn",
    "ServiceIn",
    "ServiceOut",
    "StageOut",
    "TelemetryOut",
    "VersionIn",
    "VersionOut",
    "ViolationOut",
    "WindowOut",
    "WindowSignalsOut",
    "field_errors",
]


# -- model versions: ``/apps/{name}/models`` and ``.../models/{model}/versions/{version}`` --
# The OpenAPI document names this VersionOut after its module, since the catalog has one too
# (``harmonia__server__schemas__VersionOut``): moving it would rename it for every client.
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


class VersionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    service: Name | None = Field(
        default=None, description="whose version; needed only when several services serve it"
    )
    fingerprint: list[Finite] = Field(default_factory=list, max_length=4096)
    details: dict[Name, Finite | bool | Detail | None] = Field(default_factory=dict, max_length=100)
    created: Finite | None = None


# -- Harmonica's replies ---------------------------------------------------------------------
class HarmonicaMessageOut(BaseModel):
    message: str


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
