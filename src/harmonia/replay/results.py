"""What a replay produces: one row per approach, its timeline, and the oracle frontier."""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

#: columns of results.csv, in order
CSV_COLUMNS = (
    "approach",
    "energy_j_per_inference",
    "r2",
    "mae",
    "inference_ms",
    "switches",
    "retrains",
    "reuses",
    "energy_source",
    "objective",
)


@dataclass(frozen=True)
class ActionRecord:
    """An action applied during the replay, at the index of the sample that closed its window."""

    index: int
    kind: str
    model: str | None
    version: int | None
    reason: str
    trigger: str


@dataclass
class Timeline:
    """Which model (and version) served each sample, and the actions, for the plots."""

    models: list[str] = field(default_factory=list)  # one entry per sample
    versions: list[int] = field(default_factory=list)  # one entry per sample
    actions: list[ActionRecord] = field(default_factory=list)


@dataclass
class ApproachResult:
    """One approach over the whole stream. ``objective`` is the mean window score."""

    approach: str
    energy_j_per_inference: float
    r2: float
    mae: float
    inference_ms: float
    switches: int
    retrains: int
    reuses: int
    energy_source: str
    objective: float
    seconds: float = 0.0
    timeline: Timeline = field(default_factory=Timeline, repr=False)

    def row(self) -> dict[str, Any]:
        return {column: getattr(self, column) for column in CSV_COLUMNS}


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
    #: (energy_j_per_inference, r2) of the hindsight oracle for a sweep of quality weights,
    #: Pareto-optimal points sorted by energy
    frontier: list[tuple[float, float]] = field(default_factory=list)
    #: [start, end) sample ranges where the stream is known to drift
    drift_regions: list[tuple[int, int]] = field(default_factory=list)
    energy_per_model: dict[str, float] = field(default_factory=dict)

    def approach(self, name: str) -> ApproachResult:
        return next(a for a in self.approaches if a.approach == name)

    def write(self, out: Path) -> list[Path]:
        """Write results.json (everything) and results.csv (one row per approach)."""
        out.mkdir(parents=True, exist_ok=True)
        json_path, csv_path = out / "results.json", out / "results.csv"
        json_path.write_text(json.dumps(asdict(self), indent=1) + "\n")
        with csv_path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
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
            actions = [ActionRecord(**a) for a in timeline.pop("actions")]
            approaches.append(
                ApproachResult(**item, timeline=Timeline(**timeline, actions=actions))
            )
        data["frontier"] = [tuple(point) for point in data["frontier"]]
        data["drift_regions"] = [tuple(region) for region in data["drift_regions"]]
        return cls(**data, approaches=approaches)
