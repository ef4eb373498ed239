"""Replies of the routes an operator or an orchestrator polls: ``/healthz`` (alive),
``/readyz`` (able to serve) and ``/api/v1/replicas`` (which replica owns which loop). Kept
apart from the applications' models because they describe the server, not an application.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


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
