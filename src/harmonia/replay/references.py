"""Stronger references than the window oracle: the best fixed configuration in hindsight.

A **fixed configuration** is what a user who never adapts could have deployed: any single
model, with or without periodic retraining (the ``single-<model>`` and
``single-<model>+retrain`` approaches). The **best fixed configuration** of a stream is the
one with the highest objective (mean window score) on it, known in hindsight. An approach's
**regret** against a reference is the reference's objective minus its own (positive: it did
worse). An approach is **dominated** when some fixed configuration reached a higher quality
with less energy per inference at once, on the same stream.

`best_fixed_model` computes the no-retraining part from predictions alone (as the oracle
does); `best_fixed` and `compare` read a replay's rows, retraining baselines included.

>>> import numpy as np
>>> from harmonia.core.policy import Objective
>>> actual = np.array([1.0, 2.0, 3.0, 4.0] * 2)
>>> predictions = {"cheap": actual + 1.0, "good": actual.copy()}
>>> best_fixed_model(predictions, actual, {"cheap": 0.0, "good": 0.001}, Objective(), 4)[0]
'good'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from harmonia.core.policy import Objective
from harmonia.replay.approaches import ORACLE
from harmonia.replay.oracle import R2, Quality, mean_window_score
from harmonia.replay.results import ApproachResult, ReplayResult

FIXED_PREFIX = "single-"
BEST_FIXED = "best-fixed"


def is_fixed(name: str) -> bool:
    """Whether approach ``name`` is a fixed configuration (one model, perhaps retrained on a
    schedule)."""
    return name.startswith(FIXED_PREFIX)


def best_fixed_model(
    predictions: Mapping[str, np.ndarray],
    actual: np.ndarray,
    energy: Mapping[str, float],
    objective: Objective,
    window: int,
    quality: Quality = R2,
) -> tuple[str, float]:
    """The single model with the highest mean window score over the whole stream, and that
    score (ties go to the model named first)."""
    scores = {
        model: mean_window_score(
            predicted, actual, np.full(len(actual), energy[model]), objective, window, quality
        )
        for model, predicted in predictions.items()
    }
    best = max(scores, key=lambda m: -np.inf if np.isnan(scores[m]) else scores[m])
    return best, scores[best]


def fixed_rows(result: ReplayResult) -> list[ApproachResult]:
    """The replay's fixed configurations."""
    return [row for row in result.approaches if is_fixed(row.approach)]


def best_fixed(result: ReplayResult) -> ApproachResult | None:
    """The fixed configuration with the highest objective on the stream (None if the replay
    ran none)."""
    rows = [row for row in fixed_rows(result) if not np.isnan(row.objective)]
    return max(rows, key=lambda row: row.objective) if rows else None


def dominators(row: ApproachResult, fixed: list[ApproachResult]) -> list[str]:
    """The fixed configurations with a higher quality and less energy per inference than
    ``row``, both strictly."""
    return [
        other.approach
        for other in fixed
        if other.approach != row.approach
        and other.quality > row.quality
        and other.energy_j_per_inference < row.energy_j_per_inference
    ]


@dataclass(frozen=True)
class Standing:
    """One approach on one stream, against the references."""

    approach: str
    objective: float
    quality: float
    energy_j_per_inference: float
    retrains: int
    #: best fixed configuration's objective minus this approach's
    regret_best_fixed: float
    #: window oracle's objective minus this approach's (NaN without an oracle)
    regret_oracle: float
    #: that regret as a share of the oracle's objective
    relative_regret_oracle: float
    dominated_by: tuple[str, ...]

    @property
    def dominated(self) -> bool:
        return bool(self.dominated_by)


def compare(result: ReplayResult) -> tuple[str, dict[str, Standing]]:
    """Every approach of a replay against the best fixed configuration and the window
    oracle: the best fixed configuration's name, and each approach's `Standing`."""
    fixed = fixed_rows(result)
    best = best_fixed(result)
    oracle = next((row for row in result.approaches if row.approach == ORACLE), None)
    best_objective = best.objective if best else float("nan")
    oracle_objective = oracle.objective if oracle else float("nan")
    standings: dict[str, Standing] = {}
    for row in result.approaches:
        regret_oracle = oracle_objective - row.objective
        standings[row.approach] = Standing(
            approach=row.approach,
            objective=row.objective,
            quality=row.quality,
            energy_j_per_inference=row.energy_j_per_inference,
            retrains=row.retrains,
            regret_best_fixed=best_objective - row.objective,
            regret_oracle=regret_oracle,
            relative_regret_oracle=regret_oracle / abs(oracle_objective)
            if oracle_objective
            else float("nan"),
            dominated_by=() if row.approach == ORACLE else tuple(dominators(row, fixed)),
        )
    return (best.approach if best else ""), standings
