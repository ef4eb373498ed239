"""Actions the engine decides, with the explanation that every decision carries."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from harmonia.core.units import format_energy, is_energy


class ActionKind(StrEnum):
    """What a managed system is asked to do: adaptations a policy's strategy decides, and
    the remedies a contract's violated SLO asks for."""

    SWITCH_MODEL = "switch_model"
    RETRAIN = "retrain"
    REUSE_VERSION = "reuse_version"
    #: tell people: the action is posted to the contract's alert webhook
    ALERT = "alert"
    #: serve a cheaper model on the offending service (``model`` names it)
    DEGRADE = "degrade"
    #: send the service's traffic away from the offending instance (``instance``)
    REROUTE = "reroute"
    #: shed load: the service refuses requests until its SLO is met again
    REJECT = "reject"
    #: change the service's replicas (``context``: ``replicas``, ``moves``)
    SCALE = "scale"
    #: move replicas of the service to other nodes (``context``: ``moves``)
    MIGRATE = "migrate"
    NONE = "none"


class Decision(BaseModel):
    """A strategy's choice before the engine stamps it: what to do and why."""

    model_config = ConfigDict(frozen=True)

    kind: ActionKind
    model: str | None = None
    version: int | None = None
    reason: str = Field(min_length=1)


class Action(BaseModel):
    """A decision as delivered: who decided, when, what fired it, with which values."""

    model_config = ConfigDict(frozen=True)

    kind: ActionKind
    model: str | None = None
    version: int | None = None
    ts: float
    strategy: str
    reason: str
    trigger: str = Field(description="the boundary condition or strategy rule that fired")
    values: dict[str, float] = Field(default_factory=dict)
    context: dict[str, Any] = Field(default_factory=dict)

    def explain(self) -> str:
        """One line for logs and the CLI."""
        target = f" → {self.model}" if self.model else ""
        version = f" v{self.version}" if self.version is not None else ""
        values = ", ".join(
            f"{k}={format_energy(k, v) if is_energy(k) else f'{v:.4g}'}"
            for k, v in sorted(self.values.items())
        )
        fired = f" [{self.trigger}" + (f"; {values}]" if values else "]")
        return f"{self.kind.value}{target}{version}: {self.reason}{fired}"
