"""`ObserverSpec`: one configured observer, as written in YAML."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from harmonia.observation._protocol import FIELD_NAME

#: the most samples one window may hold, whatever the spec asks for
MAX_WINDOW = 100_000


class WindowSpec(BaseModel):
    """The samples an observer looks at: the last ``size`` samples, or the last ``seconds``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    size: int | None = Field(default=None, gt=0, le=MAX_WINDOW)
    seconds: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one_of(self) -> WindowSpec:
        if (self.size is None) == (self.seconds is None):
            raise ValueError("give one of size (samples) or seconds")
        return self


class EverySpec(BaseModel):
    """When an observer runs: every ``samples`` new samples, or every ``seconds``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    samples: int | None = Field(default=None, gt=0)
    seconds: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one_of(self) -> EverySpec:
        if (self.samples is None) == (self.seconds is None):
            raise ValueError("give one of samples or seconds")
        return self


class ObserverSpec(BaseModel):
    """One observer of an application's telemetry.

    >>> spec = ObserverSpec(name="lat", observer="summary", window={"size": 100})
    >>> spec.scope, spec.metrics, spec.every.samples
    ('app', ('latency_ms',), 100)
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: what policies read: ``observer.<name>.<field>``
    name: str
    #: the plugin, by its name in the ``harmonia.observers`` group
    observer: str
    #: the plugin's constructor parameters
    params: dict[str, Any] = Field(default_factory=dict)
    #: the metric(s) watched: ``latency_ms``, ``energy_j``, ``prediction``, ``target``, or a
    #: key of the sample's ``metrics`` (``metrics.<key>`` to be explicit); one string or a list
    metrics: tuple[str, ...] = ("latency_ms",)
    #: the scope: every sample of the application (neither set), one stage, one service
    stage: str | None = None
    service: str | None = None
    window: WindowSpec = Field(default_factory=lambda: WindowSpec(size=256))
    every: EverySpec = Field(default_factory=lambda: EverySpec(samples=100))

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not FIELD_NAME.match(value):
            raise ValueError("must be an identifier (letters, digits, _), read as observer.<name>")
        return value

    @field_validator("metrics", mode="before")
    @classmethod
    def _metrics(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @field_validator("metrics")
    @classmethod
    def _some_metrics(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value or not all(value):
            raise ValueError("name at least one metric")
        return value

    @property
    def scope(self) -> Literal["app", "stage", "service"]:
        if self.stage is not None:
            return "stage"
        return "service" if self.service is not None else "app"

    def matches(self, sample: Mapping[str, Any]) -> bool:
        """Whether ``sample`` is in this observer's scope."""
        if self.stage is not None and sample.get("stage") != self.stage:
            return False
        return self.service is None or sample.get("service") == self.service


class ObserversConfig(BaseModel):
    """A list of observers with distinct names (``observers:`` in YAML)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    observers: tuple[ObserverSpec, ...] = ()

    @field_validator("observers")
    @classmethod
    def _distinct(cls, value: tuple[ObserverSpec, ...]) -> tuple[ObserverSpec, ...]:
        names = [spec.name for spec in value]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"observer names must be distinct; repeated: {', '.join(twice)}")
        return value


def parse_observers(data: Any) -> list[ObserverSpec]:
    """Observer specs from parsed YAML/JSON: ``{"observers": [...]}`` or the list itself.
    Raises pydantic's ``ValidationError``, whose messages name the field (``observers.0.window``).
    """
    if not isinstance(data, Mapping):
        data = {"observers": data}
    return list(ObserversConfig.model_validate(data).observers)


def load_observers_yaml(text: str) -> list[ObserverSpec]:
    """Observer specs from YAML text, parsed within `harmonia.bounded`'s bounds (needs the
    ``server`` extra for PyYAML)."""
    from harmonia.bounded import load_yaml

    return parse_observers(load_yaml(text))
