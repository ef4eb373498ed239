"""Replies of an application's contract and observers: ``/apps/{name}/contract`` (store,
read, check), ``/slos``, ``/violations``, ``/observers`` and ``/observations``. Both are
documents stored in versions and checked against what the application reports, so storing
either answers `ContractStoredOut`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


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
