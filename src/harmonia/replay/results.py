"""What a replay produces: one row per approach, its timeline, and the oracle frontier.

One result type serves every system: the quality metrics of a row are named (``r2`` and
``mae`` for the traffic forecaster, ``accuracy`` and ``confidence`` for the vision
classifier), and `ReplayResult.quality_metric` says which one the comparison is about.
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harmonia.core.actions import Action

#: columns of results.csv around the quality metrics, in order
_LEADING = ("approach", "energy_j_per_inference")
_TRAILING = ("inference_ms", "switches", "retrains", "reuses", "energy_source", "objective")
#: quality metrics of each kind of task, the headline first
REGRESSION_METRICS = ("r2", "mae")
CLASSIFICATION_METRICS = ("accuracy", "confidence")


def csv_columns(metrics: tuple[str, ...] = REGRESSION_METRICS) -> tuple[str, ...]:
    """Columns of results.csv for results with these quality metrics.

    >>> csv_columns(("accuracy", "confidence"))[:4]
    ('approach', 'energy_j_per_inference', 'accuracy', 'confidence')
    """
    return (*_LEADING, *metrics, *_TRAILING)


#: columns of the traffic system's results.csv
CSV_COLUMNS = csv_columns(REGRESSION_METRICS)


@dataclass(frozen=True)
class ActionRecord:
    """An action applied during the replay, at the index of the sample that closed its window."""

    index: int
    kind: str
    model: str | None
    version: int | None
    reason: str
    trigger: str

    @classmethod
    def of(cls, index: int, action: Action) -> ActionRecord:
        """``action`` as applied at sample ``index``."""
        return cls(
            index, action.kind.value, action.model, action.version, action.reason, action.trigger
        )


@dataclass
class Timeline:
    """Which model (and version) served each sample, and the actions, for the plots."""

    models: list[str] = field(default_factory=list)  # one entry per sample
    versions: list[int] = field(default_factory=list)  # one entry per sample
    actions: list[ActionRecord] = field(default_factory=list)


@dataclass
class ServiceResult:
    """What one adapting service of a pipeline did under its policy, within an approach."""

    policy: str
    #: its own quality over the stream (``accuracy``), the headline first
    metrics: dict[str, float]
    #: its mean joules per inference, its retrains' energy spread over the stream
    energy_j_per_inference: float
    inference_ms: float
    switches: int
    retrains: int
    reuses: int
    timeline: Timeline = field(default_factory=Timeline, repr=False)

    #: the columns each service adds to results.csv, as ``<service>.<column>``
    COLUMNS = ("policy", "energy_j_per_inference", "switches", "retrains", "reuses")


@dataclass
class ApproachResult:
    """One approach over the whole stream. ``objective`` is the mean window score;
    ``metrics`` its quality over the stream, the headline first (``r2`` then ``mae``, or
    ``accuracy`` then ``confidence``)."""

    approach: str
    energy_j_per_inference: float
    metrics: dict[str, float]
    inference_ms: float
    switches: int
    retrains: int
    reuses: int
    energy_source: str
    objective: float
    seconds: float = 0.0
    timeline: Timeline = field(default_factory=Timeline, repr=False)
    #: a pipeline's: mean joules per frame in each stage, retrains included (they sum to
    #: ``energy_j_per_inference``, the end-to-end figure); empty for a one-service system
    energy_per_stage: dict[str, float] = field(default_factory=dict)
    #: a pipeline's: what each adapting service did (its ``timeline``; the approach's own is
    #: empty); empty for a one-service system
    services: dict[str, ServiceResult] = field(default_factory=dict)

    @property
    def quality(self) -> float:
        """The headline quality metric (the first of ``metrics``)."""
        return next(iter(self.metrics.values()), float("nan"))

    @property
    def r2(self) -> float:
        """R² over the stream (NaN for a classifier)."""
        return self.metrics.get("r2", float("nan"))

    @property
    def mae(self) -> float:
        """Mean absolute error over the stream (NaN for a classifier)."""
        return self.metrics.get("mae", float("nan"))

    @property
    def accuracy(self) -> float:
        """Classification accuracy over the stream (NaN for a regressor)."""
        return self.metrics.get("accuracy", float("nan"))

    def row(self) -> dict[str, Any]:
        """One line of results.csv: the columns of `csv_columns` for this row's metrics."""
        row: dict[str, Any] = {column: getattr(self, column) for column in _LEADING}
        row.update(self.metrics)
        row.update({column: getattr(self, column) for column in _TRAILING})
        row.update({f"energy_j.{stage}": joules for stage, joules in self.energy_per_stage.items()})
        for name, service in self.services.items():
            row.update({f"{name}.{c}": getattr(service, c) for c in ServiceResult.COLUMNS})
        return row

    def extra_columns(self) -> tuple[str, ...]:
        """A pipeline's columns after `csv_columns`: energy per stage, each service's row."""
        stages = tuple(f"energy_j.{stage}" for stage in self.energy_per_stage)
        services = tuple(f"{name}.{c}" for name in self.services for c in ServiceResult.COLUMNS)
        return stages + services


@dataclass
class ReplayResult:
    """A whole comparison: every approach on one stream, with what the plots need."""

    system: str
    menu: str
    seed: int
    data: str
    samples: int
    models: list[str]
    window: int
    approaches: list[ApproachResult]
    #: (energy_j_per_inference, headline quality) of the hindsight oracle for a sweep of
    #: quality weights,
    #: Pareto-optimal points sorted by energy
    frontier: list[tuple[float, float]] = field(default_factory=list)
    #: [start, end) sample ranges where the stream is known to drift
    drift_regions: list[tuple[int, int]] = field(default_factory=list)
    energy_per_model: dict[str, float] = field(default_factory=dict)
    #: the quality the comparison is about (each row's headline metric): r2 or accuracy
    quality_metric: str = "r2"
    #: the condition of each drift region (the vision system's; empty when unnamed)
    drift_conditions: list[str] = field(default_factory=list)

    @property
    def metric_names(self) -> tuple[str, ...]:
        """The quality metrics of the rows, headline first."""
        if self.approaches:
            return tuple(self.approaches[0].metrics)
        return REGRESSION_METRICS if self.quality_metric == "r2" else CLASSIFICATION_METRICS

    def approach(self, name: str) -> ApproachResult:
        return next(a for a in self.approaches if a.approach == name)

    def write(self, out: Path) -> list[Path]:
        """Write results.json (everything) and results.csv (one row per approach)."""
        out.mkdir(parents=True, exist_ok=True)
        json_path, csv_path = out / "results.json", out / "results.csv"
        json_path.write_text(json.dumps(asdict(self), indent=1) + "\n")
        with csv_path.open("w", newline="") as handle:
            extra = self.approaches[0].extra_columns() if self.approaches else ()
            writer = csv.DictWriter(handle, fieldnames=(*csv_columns(self.metric_names), *extra))
            writer.writeheader()
            for result in self.approaches:
                writer.writerow(result.row())
        return [json_path, csv_path]

    @classmethod
    def read(cls, path: Path) -> ReplayResult:
        """Read a results.json back (the dashboard opens earlier experiments this way)."""
        data = json.loads(path.read_text())
        approaches = []
        for item in data.pop("approaches"):
            timeline = item.pop("timeline")
            if "metrics" not in item:  # written before results named their metrics
                item["metrics"] = {"r2": item.pop("r2"), "mae": item.pop("mae")}
            services = {
                name: ServiceResult(**{**service, "timeline": _timeline(service["timeline"])})
                for name, service in item.pop("services", {}).items()
            }
            approaches.append(
                ApproachResult(**item, timeline=_timeline(timeline), services=services)
            )
        data["frontier"] = [tuple(point) for point in data["frontier"]]
        data["drift_regions"] = [tuple(region) for region in data["drift_regions"]]
        return cls(**data, approaches=approaches)


def _timeline(data: dict[str, Any]) -> Timeline:
    actions = [ActionRecord(**a) for a in data["actions"]]
    return Timeline(models=data["models"], versions=data["versions"], actions=actions)
