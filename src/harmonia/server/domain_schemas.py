"""Request and reply bodies of organisations, domains, API keys and the audit log (apart
from `harmonia.server.schemas`, which holds the applications' and telemetry's)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from harmonia.server.fields import AppName, ShortText

#: names of organisations and domains follow the applications' rule
OrgName = AppName
DomainName = AppName
Scope = Literal["read", "write", "admin"]
#: a Kubernetes namespace: a DNS label
NAMESPACE_PATTERN = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
#: the longest a key may be made to live: ten years
MAX_KEY_LIFETIME_S = 10 * 365 * 86400.0


class OrgIn(BaseModel):
    """An organisation: a vendor, an operator."""

    model_config = ConfigDict(extra="forbid")
    name: OrgName


class OrgOut(BaseModel):
    name: str
    created: float


class TargetIn(BaseModel):
    """Where a domain's services are deployed: a context of the server's kubeconfig (None:
    its current context) and a namespace."""

    model_config = ConfigDict(extra="forbid")
    context: ShortText | None = None
    namespace: str = Field(default="default", pattern=NAMESPACE_PATTERN, max_length=63)


class DomainIn(BaseModel):
    """A domain of an organisation (``vendor``, ``operator-production``), with an optional
    deployment target."""

    model_config = ConfigDict(extra="forbid")
    name: DomainName
    org: OrgName
    target: TargetIn | None = None


class TargetOut(BaseModel):
    context: str | None
    namespace: str


class DomainOut(BaseModel):
    name: str
    org: str
    target: TargetOut | None
    created: float


class DomainCheckOut(BaseModel):
    """Whether the domain's deployment target answers, in words (``detail``)."""

    domain: str
    target: TargetOut | None
    reachable: bool = Field(description="an API server answered at the target")
    context: str | None = Field(description="the kubeconfig context used, when one was found")
    detail: str


class KeyIn(BaseModel):
    """A new key of the domain: its scope, a name to tell it apart, an optional lifetime."""

    model_config = ConfigDict(extra="forbid")
    scope: Scope
    name: str = Field(default="", max_length=128, pattern=r"^[^\x00]*$")
    expires_in_s: float | None = Field(
        default=None, gt=0, le=MAX_KEY_LIFETIME_S, allow_inf_nan=False
    )


class KeyOut(BaseModel):
    """A key as listed: its id and scope, never its secret."""

    id: str
    domain: str
    scope: Scope
    name: str
    created: float
    created_by: str
    expires: float | None
    rotated: float | None
    revoked: float | None


class KeyCreatedOut(KeyOut):
    """A key just created or rotated, with its token: shown this once, never stored."""

    token: str = Field(description="hk_<id>_<secret>: send as Authorization: Bearer <token>")


class AuditOut(BaseModel):
    """One line of the audit log: who (``admin``, ``app:<name>``, ``key:<id>``), what, on
    what, in which domain, when, and how it went (``ok``, ``denied``, ``failed``)."""

    id: int
    ts: float
    principal: str
    action: str
    resource: str
    domain: str | None
    outcome: str
    detail: str
