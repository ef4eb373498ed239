"""What ensemble selection reads and returns: service profiles, a consumer's contract, the
selection, and the error that names every bad field.

The formulation is ROHE's (UCC'24): each profiled service (a model on a node) has per-class
accuracy, confidence, latency, throughput per replica and cost per replica; a consumer's
contract weights metrics, each aggregated over the ensemble's members and normalised between
bounds, and the chosen ensemble maximises the weighted sum under a deadline and a throughput.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from harmonia.core.application import Name
from harmonia.core.errors import DocumentError

#: how a metric of the members becomes the ensemble's: ``1-prod(1-x)`` is "any member right"
#: (ROHE calls it ``rprod``), ``prod`` "all members wrong" for miss rates
Aggregation = Literal["prod", "1-prod(1-x)", "sum", "avg", "min", "max"]
Objective = Literal["max", "min"]
Scale = Literal["linear", "log"]

#: other spellings accepted on input (ROHE's contract files use ``rprod`` and ``mean``)
AGGREGATION_ALIASES: dict[str, str] = {"rprod": "1-prod(1-x)", "mean": "avg"}

#: built-in metric kinds: their default aggregation and objective. ``accuracy``,
#: ``miss_rate`` and ``confidence`` also come per class: ``accuracy[car]``.
BUILTIN_METRICS: dict[str, tuple[Aggregation, Objective]] = {
    "accuracy": ("1-prod(1-x)", "max"),
    "miss_rate": ("prod", "min"),
    "confidence": ("avg", "max"),
    "latency_ms": ("max", "min"),
    "cost": ("sum", "min"),
    "energy_j": ("sum", "min"),
    "replicas": ("sum", "min"),
}
PER_CLASS_METRICS = frozenset({"accuracy", "miss_rate", "confidence"})

_METRIC_NAME = re.compile(
    r"^(?P<kind>[A-Za-z_][A-Za-z0-9_.-]{0,63})(?:\[(?P<cls>[^\[\]]{1,128})\])?$"
)

Fraction = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]


class EnsembleError(DocumentError, ValueError):
    """Inputs to ensemble selection are invalid; ``issues`` name each bad field by its path
    (``services.2.accuracy.car``, ``contract.metrics.cost.bounds``)."""

    kind = "ensemble input"


def parse_metric_name(name: str) -> tuple[str, str | None]:
    """Split ``accuracy[car]`` into ``("accuracy", "car")``; a plain name has no class.

    >>> parse_metric_name("miss_rate[person]")
    ('miss_rate', 'person')
    >>> parse_metric_name("cost")
    ('cost', None)
    """
    match = _METRIC_NAME.match(name)
    if match is None:
        raise ValueError(f"{name!r} is not a metric name (e.g. accuracy, accuracy[car], cost)")
    kind, cls = match.group("kind"), match.group("cls")
    if cls is not None and kind not in PER_CLASS_METRICS:
        raise ValueError(
            f"{name!r}: only {', '.join(sorted(PER_CLASS_METRICS))} take a class in brackets"
        )
    return kind, cls


class ServiceProfile(BaseModel):
    """One candidate member: a model served on a node, as profiled.

    Several profiles may share a ``name`` with different ``node`` s: they are the placements
    the selection chooses between (at most one per name joins an ensemble). ``throughput_rps``
    and ``cost`` are per replica, so the selection scales a member to the consumer's
    throughput and pays for every replica.

    >>> ServiceProfile(name="yolo-s", node="jetson", accuracy={"car": 0.9, "person": 0.8},
    ...                confidence=0.85, latency_ms=40, throughput_rps=25, cost=1.5).replicas_for(60)
    3
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    #: where this profile was measured and the member would run; None: anywhere
    node: Name | None = None
    #: accuracy per class, in [0, 1]; the plain ``accuracy`` metric is their mean
    accuracy: dict[str, Fraction] = Field(min_length=1, max_length=10_000)
    #: mean confidence, or confidence per class (then ``confidence`` is their mean);
    #: needed only when the contract names a confidence metric
    confidence: Fraction | dict[str, Fraction] | None = None
    latency_ms: NonNegative
    #: requests per second one replica sustains
    throughput_rps: float = Field(gt=0.0, allow_inf_nan=False)
    #: cost of one replica (per hour, per month: the contract's bounds say which)
    cost: NonNegative = 0.0
    #: energy per inference, in joules; needed only when the contract names ``energy_j``
    energy_j: NonNegative | None = None
    #: the most replicas its node can host; None: no limit
    max_replicas: int | None = Field(default=None, ge=1)
    #: any other per-member metric a contract may name (with its aggregation and objective)
    metrics: dict[str, Annotated[float, Field(allow_inf_nan=False)]] = Field(
        default_factory=dict, max_length=1000
    )

    @field_validator("metrics")
    @classmethod
    def _no_builtin_names(cls, metrics: dict[str, float]) -> dict[str, float]:
        clashing = sorted(set(metrics) & set(BUILTIN_METRICS))
        if clashing:
            raise ValueError(f"{', '.join(clashing)} are built-in metrics, not extra ones")
        return metrics

    @property
    def key(self) -> str:
        """``name@node`` (or ``name``): how explanations and results name this placement."""
        return self.name if self.node is None else f"{self.name}@{self.node}"

    def replicas_for(self, throughput_rps: float) -> int:
        """Replicas needed to serve ``throughput_rps``: every member sees every request."""
        return max(1, math.ceil(throughput_rps / self.throughput_rps - 1e-9))


class MetricObjective(BaseModel):
    """How one metric counts in the consumer's utility: ``weight`` × its normalised score.

    The ensemble's value is the members' values aggregated by ``aggregation``, clamped to
    ``bounds`` and mapped to [0, 1] linearly or on a log scale (the log base does not matter:
    it cancels in the ratio); ``objective: min`` turns that into 1 − the mapped value. Unlike
    ROHE, linear values are clamped too, so that every score stays in [0, 1] and the utility
    has a known maximum (the sum of the weights) against which a search can report its gap.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    weight: float = Field(default=1.0, ge=0.0, allow_inf_nan=False)
    #: None: the built-in metric's default (required for an extra metric)
    aggregation: Aggregation | None = None
    #: None: the built-in metric's default (required for an extra metric)
    objective: Objective | None = None
    scale: Scale = "linear"
    bounds: tuple[float, float]

    @field_validator("aggregation", mode="before")
    @classmethod
    def _alias(cls, value: Any) -> Any:
        return AGGREGATION_ALIASES.get(value, value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _bounds_fit_scale(self) -> MetricObjective:
        low, high = self.bounds
        if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
            raise ValueError(f"bounds must be two finite numbers, low < high; got {self.bounds}")
        if self.scale == "log" and low <= 0:
            raise ValueError(f"a log scale needs bounds above 0; got low = {low}")
        return self

    def score(self, value: float) -> float:
        """The normalised score of an ensemble's ``value``, in [0, 1] (1 is best).

        >>> MetricObjective(bounds=(0.001, 0.1), scale="log", objective="min").score(0.01)
        0.5
        """
        low, high = self.bounds
        clamped = min(max(value, low), high)
        if self.scale == "log":
            mapped = (math.log(clamped) - math.log(low)) / (math.log(high) - math.log(low))
        else:
            mapped = (clamped - low) / (high - low)
        return mapped if self.objective != "min" else 1.0 - mapped


class ConsumerContract(BaseModel):
    """What a consumer wants from an ensemble: a utility to maximise, and hard limits.

    Hard limits: every member answers within ``deadline_ms`` (members run in parallel, so
    the ensemble takes its slowest member plus ``aggregation_ms``), the ensemble serves
    ``throughput_rps`` (each member scaled to it), it has ``min_members`` to ``max_members``
    members and costs at most ``max_cost``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name | None = None
    metrics: dict[str, MetricObjective] = Field(min_length=1, max_length=100)
    deadline_ms: float | None = Field(default=None, gt=0.0, allow_inf_nan=False)
    throughput_rps: float = Field(default=1.0, gt=0.0, allow_inf_nan=False)
    #: time to aggregate the members' outputs, added to the slowest member's latency
    aggregation_ms: NonNegative = 0.0
    min_members: int = Field(default=1, ge=1, le=1000)
    max_members: int | None = Field(default=None, ge=1, le=1000)
    max_cost: NonNegative | None = None

    @field_validator("metrics")
    @classmethod
    def _resolve_defaults(cls, metrics: dict[str, MetricObjective]) -> dict[str, MetricObjective]:
        """Fill a built-in metric's default aggregation and objective, so that a reader of
        the contract sees what is in force; refuse an extra metric that leaves them out."""
        resolved: dict[str, MetricObjective] = {}
        problems: list[str] = []
        for name, metric in metrics.items():
            try:
                kind, _ = parse_metric_name(name)
            except ValueError as error:
                problems.append(f"metrics.{name}: {error}")
                continue
            default = BUILTIN_METRICS.get(kind)
            if default is None:
                missing = [f for f in ("aggregation", "objective") if getattr(metric, f) is None]
                problems.extend(
                    f"metrics.{name}.{field}: required for a metric that is not built in"
                    for field in missing
                )
                resolved[name] = metric
                continue
            resolved[name] = metric.model_copy(
                update={
                    "aggregation": metric.aggregation or default[0],
                    "objective": metric.objective or default[1],
                }
            )
        if problems:
            raise ValueError("; ".join(problems))
        if not any(metric.weight > 0 for metric in resolved.values()):
            raise ValueError("at least one metric needs a weight above 0")
        return resolved

    @model_validator(mode="after")
    def _members_range(self) -> ConsumerContract:
        if self.max_members is not None and self.max_members < self.min_members:
            raise ValueError(
                f"max_members ({self.max_members}) is below min_members ({self.min_members})"
            )
        return self

    @property
    def max_utility(self) -> float:
        """The utility of a perfect ensemble: the sum of the weights."""
        return math.fsum(metric.weight for metric in self.metrics.values())


class Member(BaseModel):
    """One member of a chosen ensemble: where it runs and how many replicas it needs."""

    model_config = ConfigDict(frozen=True)

    service: str
    node: str | None
    replicas: int
    #: replicas × cost per replica
    cost: float
    latency_ms: float


class MetricValue(BaseModel):
    """One metric of an ensemble: its aggregated value, score in [0, 1] and weighted score."""

    model_config = ConfigDict(frozen=True)

    value: float
    score: float
    weighted: float


Method = Literal["exact", "branch_and_bound", "evaluation"]


class Selection(BaseModel):
    """The chosen ensemble, or why there is none.

    ``optimal`` is true when no other ensemble has a higher utility (all were enumerated,
    or the search proved it); otherwise ``bound`` is an upper bound on the best utility and
    ``gap`` = ``bound`` − ``utility`` says how far from the optimum it may be.
    """

    model_config = ConfigDict(frozen=True)

    feasible: bool
    members: list[Member] = Field(default_factory=list)
    #: None when no ensemble is feasible
    utility: float | None = None
    #: the contract's maximum: the sum of its weights
    max_utility: float
    metrics: dict[str, MetricValue] = Field(default_factory=dict)
    latency_ms: float | None = None
    cost: float | None = None
    replicas: int = 0
    method: Method
    optimal: bool
    bound: float | None = None
    gap: float | None = None
    #: ensembles evaluated (exact) or search nodes expanded (branch and bound)
    explored: int = 0
    #: why this ensemble, or why none: what was excluded and which limit bound
    reason: str

    @property
    def names(self) -> list[str]:
        """The members' service names, in the order chosen."""
        return [member.service for member in self.members]
