"""Bodies and replies of an application's registration and of its control loop: ``/apps``
(register, list, read one, an instance says it runs), ``/apps/{name}/policy`` and the
services' policies, and ``/apps/{name}/actions`` (the actions decided, their results).
`Server` takes `AppIn`, `InstanceIn` and `ResultIn` as they are, and the dashboard's
overview embeds `ActionOut`, so these live apart from any one route.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from harmonia.core.actions import ActionKind
from harmonia.core.application import MAX_STAGES, Application, Stage, ordered_stages
from harmonia.server.fields import AppName, Label, Name, Reason, ShortText
from harmonia.server.targets import check_url_shape


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


class ResultIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["applied", "failed"]
    reason: Reason = ""
