"""Policies: what a managed system must achieve and how Harmonia may adapt it.

A policy is plain data (YAML or JSON) validated here; every error names the field path and
the reason. Parsing is pure: reading files and checking plugin names against what is
installed happen in `harmonia.policies`.
"""

from __future__ import annotations

import math
import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from harmonia.core.conditions import Comparison, Condition, Junction, Operand, parse_condition
from harmonia.core.errors import Issue, PolicyError


class Tactic(StrEnum):
    """What a boundary asks for when it is violated; the strategy decides how."""

    SWITCH_MODEL = "switch_model"
    RETRAIN = "retrain"
    REUSE_VERSION = "reuse_version"
    REUSE_OR_RETRAIN = "reuse_or_retrain"


_SAMPLES = re.compile(r"^\s*(\d+)\s*(?:samples?)?\s*$", re.IGNORECASE)
_WINDOWS = re.compile(r"^\s*(\d+)\s*(?:windows?)?\s*$", re.IGNORECASE)
_DURATION = re.compile(
    r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|secs|seconds?|m|min|mins|minutes?|h|hours?)\s*$",
    re.IGNORECASE,
)
_UNIT_SECONDS = {"s": 1.0, "m": 60.0, "h": 3600.0}


def _count_or_duration(value: Any, unit: str, count: re.Pattern[str], example: str) -> Any:
    """Read ``"200 samples"``, ``"3 windows"``, a bare count or a duration (``"60 s"``,
    ``"5 min"``) into the fields ``{unit: n}`` or ``{"seconds": s}``; leave mappings as they are.
    """
    expected = f"expected {example!r} or a duration such as '60 s'"
    if isinstance(value, bool):
        raise ValueError(expected)
    if isinstance(value, int):
        return {unit: value}
    if isinstance(value, str):
        if match := count.match(value):
            return {unit: int(match.group(1))}
        if match := _DURATION.match(value):
            return {"seconds": float(match.group(1)) * _UNIT_SECONDS[match.group(2)[0].lower()]}
        raise ValueError(f"{value!r}: {expected}")
    return value


MAX_WINDOW_SAMPLES = 100_000
"""The most samples one window holds: a time window closes early when it is this full, so
its memory is bounded whatever the rate (or the timestamps) of the telemetry."""


class Window(BaseModel):
    """How much telemetry one decision looks at: a count of samples or a duration (a time
    window also closes once it holds `MAX_WINDOW_SAMPLES`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    samples: int | None = Field(default=None, ge=1, le=MAX_WINDOW_SAMPLES)
    seconds: float | None = Field(default=None, gt=0, le=7 * 24 * 3600)

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        return _count_or_duration(value, "samples", _SAMPLES, "200 samples")

    @model_validator(mode="after")
    def _exactly_one(self) -> Window:
        if (self.samples is None) == (self.seconds is None):
            raise ValueError("give either samples or seconds")
        return self

    def __str__(self) -> str:
        return f"{self.samples} samples" if self.samples else f"{self.seconds:g} s"


class Cooldown(BaseModel):
    """The least time between two actions, in decision windows or seconds (or both)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    windows: int = Field(default=0, ge=0)
    seconds: float = Field(default=0.0, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        return _count_or_duration(value, "windows", _WINDOWS, "3 windows")


class Weights(BaseModel):
    """Weights of the score's two terms; they sum to 1 (HarmonE's β and 1−β)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    quality: float = Field(default=0.95, ge=0, le=1)
    energy: float = Field(default=0.05, ge=0, le=1)

    @model_validator(mode="after")
    def _sum_to_one(self) -> Weights:
        if not math.isclose(self.quality + self.energy, 1.0, abs_tol=1e-6):
            raise ValueError(f"quality + energy must sum to 1, got {self.quality} + {self.energy}")
        return self


class Objective(BaseModel):
    """What ``score`` means: ``S = w_q·quality + w_e·(1 − E_norm)``, E_norm clamped to [0, 1].

    ``quality`` names a higher-is-better measure: ``r2`` (from predictions and targets),
    ``accuracy`` (a classifier's: the share of predicted classes equal to the targets), or
    any telemetry metric, whose window mean is used (``confidence``, ``correct``...).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    quality: str = Field(default="r2", min_length=1)
    weights: Weights = Field(default_factory=Weights)
    energy_range_j: tuple[float, float] = (0.0, 0.025)

    @field_validator("energy_range_j")
    @classmethod
    def _range(cls, value: tuple[float, float]) -> tuple[float, float]:
        low, high = value
        if not (math.isfinite(low) and math.isfinite(high)) or low < 0 or high <= low:
            raise ValueError(f"expected [low, high] joules with 0 <= low < high, got {value}")
        return value


def _parse_when(value: Any) -> Condition:
    if isinstance(value, Comparison | Junction):
        return value
    if not isinstance(value, str):
        raise ValueError("a condition must be a string such as 'score < 0.78'")
    return parse_condition(value)


ConditionField = Annotated[
    Condition,
    PlainValidator(_parse_when),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string", "examples": ["score < 0.78"]}),
]


class Boundary(BaseModel):
    """A contract: when ``when`` holds over a window, the tactic ``then`` is due."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    when: ConditionField
    then: Tactic
    name: str | None = None

    @model_validator(mode="after")
    def _labels_a_window_has(self) -> Boundary:
        # a policy's window holds telemetry samples, which name no node (contracts know it)
        for operand in self.when.operands():
            for term in (operand, *operand.terms):
                if any(match.label == "node" for match in term.selector):
                    raise ValueError(
                        f"{operand}: a policy's samples carry no node; select by instance, "
                        "or hold the node in a contract"
                    )
        return self

    @property
    def label(self) -> str:
        return self.name or str(self.when)


#: a feature's name: it becomes part of metric keys such as ``context.dark-mild.<name>_mean``
_FEATURE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class DriftSettings(BaseModel):
    """Which value the drift detectors ``watch``, against what reference, with which parameters.

    ``reference: training`` compares the window with the training data of the version in
    service; ``previous_window`` with the window before (HarmonE's choice). ``features``
    names other per-sample metrics that describe the inputs: no detector watches them, but
    each window keeps their values (`harmonia.core.monitor.WindowSummary.features`), so a
    strategy can tell apart conditions the watched value alone confuses (sensor noise barely
    moves an image's luminance, but its sharpness jumps).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    watch: str = Field(default="drift_value", min_length=1)
    reference: Literal["training", "previous_window"] = "training"
    detectors: dict[str, dict[str, Any]] = Field(default_factory=dict)
    features: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _features_named_once(self) -> DriftSettings:
        seen: set[str] = set()
        for name in self.features:
            if not _FEATURE_NAME.fullmatch(name) or name == "drift":
                raise ValueError(
                    f"feature {name!r} must be a metric name of letters, digits and _ "
                    "(and not 'drift', the watched value's name in a stress test)"
                )
            if name == self.watch:
                raise ValueError(f"feature {name!r} is the watched value already")
            if name in seen:
                raise ValueError(f"feature {name!r} is listed twice")
            seen.add(name)
        return self


class Policy(BaseModel):
    """A validated adaptation policy. Build one with `parse_policy` to get field-path errors."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    policy: str = Field(min_length=1, description="policy id")
    system: str = Field(min_length=1, description="the registered application it governs")
    models: list[str] = Field(min_length=1)
    objective: Objective = Field(default_factory=Objective)
    window: Window = Field(default_factory=lambda: Window(samples=200))
    strategy: str = Field(default="harmone", min_length=1)
    options: dict[str, Any] = Field(default_factory=dict, description="parameters of the strategy")
    boundaries: list[Boundary] = Field(default_factory=list)
    cooldown: Cooldown = Field(default_factory=Cooldown)
    drift: DriftSettings = Field(default_factory=DriftSettings)
    initial_model: str | None = None
    harmonica: dict[str, Any] | None = Field(
        default=None, description="the Harmonica document this policy was converted from"
    )

    @field_validator("models")
    @classmethod
    def _unique_models(cls, value: list[str]) -> list[str]:
        seen: set[str] = set()
        for name in value:
            if not name.strip():
                raise ValueError("model names must not be empty")
            if name in seen:
                raise ValueError(f"model {name!r} is listed twice")
            seen.add(name)
        return value

    @model_validator(mode="after")
    def _initial_model_known(self) -> Policy:
        if self.initial_model is not None and self.initial_model not in self.models:
            raise ValueError(
                f"initial_model {self.initial_model!r} is not one of models {self.models}"
            )
        return self

    @property
    def start_model(self) -> str:
        """The model in service before the first decision."""
        return self.initial_model or self.models[0]

    def operands(self) -> list[Operand]:
        """Every signal the boundaries read, each once, in order of appearance."""
        seen: dict[str, Operand] = {}
        for boundary in self.boundaries:
            for operand in boundary.when.operands():
                seen.setdefault(operand.key, operand)
        return list(seen.values())

    def drift_detectors(self) -> list[str]:
        """Detectors the policy needs: those configured plus those its boundaries read."""
        names = dict.fromkeys(self.drift.detectors)
        for operand in self.operands():
            if (detector := operand.drift_detector) is not None:
                names.setdefault(detector)
        return list(names)


def _issue_path(location: tuple[int | str, ...]) -> str:
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def issues_from(error: ValidationError, prefix: str = "") -> list[Issue]:
    """Pydantic's errors as `Issue`s with readable paths like ``boundaries[1].when``."""
    issues = []
    for item in error.errors(include_url=False):
        location = tuple(
            part for part in item["loc"] if not (isinstance(part, str) and "[" in part)
        )
        path = _issue_path(location)
        if prefix:
            path = f"{prefix}.{path}" if path else prefix
        reason = str(item["msg"]).removeprefix("Value error, ")
        issues.append(Issue(path, reason))
    return issues


def parse_policy(data: Any, source: str | None = None) -> Policy:
    """Validate a policy document (already parsed from YAML/JSON) or raise `PolicyError`."""
    if not isinstance(data, dict):
        raise PolicyError([Issue("", "a policy must be a mapping of fields")], source)
    try:
        return Policy.model_validate(data)
    except ValidationError as error:
        raise PolicyError(issues_from(error), source) from None
