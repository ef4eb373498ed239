"""What a contract is: its SLOs, how it is parsed and checked against an application, and
the results of evaluating it."""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic import model_validator as _model_validator

from harmonia.core.application import Application, AppName, Name
from harmonia.core.conditions import Condition, parse_condition
from harmonia.core.errors import DocumentError, Issue
from harmonia.core.pipeline import DEFAULT_CARBON_G_PER_KWH
from harmonia.core.policy import Window

Scope = Literal["service", "stage", "end_to_end"]
Severity = Literal["info", "warning", "critical"]
#: a violated SLO's remedy; ``scale_or_migrate`` migrates off a saturated node, else scales
Then = Literal["alert", "degrade", "reroute", "reject", "scale", "migrate", "scale_or_migrate"]
Status = Literal["met", "at_risk", "violated", "no_data"]

#: bare signals a contract computes over a window (not means of a reported metric)
WINDOW_SIGNALS = frozenset(
    {"count", "throughput", "availability", "error_rate", "accuracy", "total_energy_j", "co2_g"}
)
#: IEA's world average grid intensity (gCO2e/kWh), the default when a contract names none
#: window signals that end to end read traces (``accuracy`` reads the final stages' samples)
_TRACE_SIGNALS = WINDOW_SIGNALS - {"accuracy"}

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]


class ContractError(DocumentError, ValueError):
    """A contract is invalid (or does not fit its application); ``issues`` name each field."""

    kind = "contract"


class SLO(BaseModel):
    """One objective: ``condition`` must hold over ``window`` of ``scope`` / ``target``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    scope: Scope = "end_to_end"
    #: the service or stage the SLO reads; none end to end
    target: Name | None = None
    condition: str = Field(max_length=1000)
    #: None: the contract's window
    window: Window | None = None
    severity: Severity = "warning"
    then: Then | None = None

    @field_validator("condition")
    @classmethod
    def _parses(cls, value: str) -> str:
        return str(parse_condition(value))

    @_model_validator(mode="after")
    def _target_fits_scope(self) -> SLO:
        if self.scope == "end_to_end" and self.target is not None:
            raise ValueError("an end_to_end SLO has no target")
        if self.scope != "end_to_end" and self.target is None:
            raise ValueError(f"a {self.scope} SLO needs a target (the {self.scope}'s name)")
        return self

    @property
    def parsed(self) -> Condition:
        return _parsed(self.condition)


class Contract(BaseModel):
    """An application's SLOs. ``window`` is the default window of every SLO."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name | None = None
    #: the application it binds; checked against the application evaluated when given
    application: AppName | None = None
    window: Window = Field(default_factory=lambda: Window(seconds=300.0))
    carbon_g_per_kwh: float = Field(default=DEFAULT_CARBON_G_PER_KWH, ge=0, le=5000)
    at_risk_margin: float = Field(default=0.1, ge=0, lt=1)
    #: where ``alert`` actions are posted (a webhook); none: they are only recorded
    alert_url: str | None = Field(default=None, max_length=512)
    slos: list[SLO] = Field(min_length=1, max_length=1000)

    @field_validator("slos")
    @classmethod
    def _distinct(cls, slos: list[SLO]) -> list[SLO]:
        counts = Counter(slo.name for slo in slos)
        repeated = sorted(name for name, n in counts.items() if n > 1)
        if repeated:
            raise ValueError(f"SLO names must be distinct; repeated: {', '.join(repeated)}")
        return slos

    def issues_with(self, app: Application) -> list[Issue]:
        """What does not fit ``app``: another application's name, unknown targets."""
        issues = []
        if self.application is not None and self.application != app.name:
            issues.append(Issue("application", f"the contract is for {self.application!r}"))
        stages = {stage.name for stage in app.stages}
        services = {service.name for service in app.services}
        for index, slo in enumerate(self.slos):
            known = stages if slo.scope == "stage" else services
            if slo.scope != "end_to_end" and slo.target not in known:
                issues.append(
                    Issue(
                        f"slos.{index}.target",
                        f"{app.name} has no {slo.scope} {slo.target!r}; "
                        f"its {slo.scope}s: {', '.join(sorted(known))}",
                    )
                )
        return issues


def parse_contract(data: Mapping[str, Any] | Contract, source: str | None = None) -> Contract:
    """Validate a contract document, or raise `ContractError` naming every bad field."""
    if isinstance(data, Contract):
        return data
    try:
        return Contract.model_validate(data)
    except ValidationError as error:
        raise ContractError.from_validation(error, source=source) from None


@functools.lru_cache(maxsize=4096)
def _parsed(text: str) -> Condition:
    return parse_condition(text)


# -- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One comparison of an SLO's condition, with the value it read."""

    signal: str
    op: str
    threshold: float
    value: float
    status: Status


@dataclass(frozen=True)
class Attribution:
    """Where a violation comes from. ``share``: the stage's share of the excess (end to end)
    or the instance's share of the violating samples; ``value``: the instance's signal."""

    stage: str
    service: str | None
    instance: str | None
    node: str | None
    share: float | None
    signal: str
    value: float | None


@dataclass(frozen=True)
class SLOResult:
    slo: str
    scope: Scope
    target: str | None
    condition: str
    status: Status
    severity: Severity
    then: Then | None
    window: str
    #: samples (traces end to end) the SLO read
    samples: int
    checks: tuple[Check, ...] = ()
    explanation: str | None = None
    attribution: tuple[Attribution, ...] = field(default=())

    @property
    def values(self) -> dict[str, float]:
        return {check.signal: check.value for check in self.checks}

    def as_dict(self) -> dict[str, Any]:
        """Plain data (NaN as None) for JSON."""

        def clean(value: Any) -> Any:
            return None if isinstance(value, float) and math.isnan(value) else value

        return {
            "slo": self.slo,
            "scope": self.scope,
            "target": self.target,
            "condition": self.condition,
            "status": self.status,
            "severity": self.severity,
            "then": self.then,
            "window": self.window,
            "samples": self.samples,
            "checks": [{k: clean(v) for k, v in vars(c).items()} for c in self.checks],
            "explanation": self.explanation,
            "attribution": [{k: clean(v) for k, v in vars(a).items()} for a in self.attribution],
        }
