"""Replies of the routes the dashboard calls for itself: ``/api/v1/auth``, ``/presets``,
``/policy/validate``, ``/overview``, ``/apps/{name}/status``, and the reference systems and
experiments it starts (``/runs``, ``/experiments``). Kept apart from the API that managed
systems and clients use: they serve the dashboard's pages only.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from harmonia.server.app_schemas import ActionOut
from harmonia.server.openapi import FieldError


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
