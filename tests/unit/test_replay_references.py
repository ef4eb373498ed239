"""The best fixed configuration in hindsight, regret and domination."""

from __future__ import annotations

import numpy as np
import pytest

from harmonia.core.policy import Objective
from harmonia.replay.oracle import oracle
from harmonia.replay.references import best_fixed, best_fixed_model, compare, dominators
from harmonia.replay.results import ApproachResult, ReplayResult

WINDOW = 50


def constructed() -> tuple[dict[str, np.ndarray], np.ndarray, dict[str, float]]:
    """A stream of 4 windows: ``early`` is exact on the first half and poor after, ``late``
    the reverse, ``steady`` is slightly off everywhere (and costs more)."""
    rng = np.random.default_rng(0)
    actual = rng.normal(100.0, 20.0, 4 * WINDOW)
    half = 2 * WINDOW
    bad = actual + rng.normal(0.0, 30.0, len(actual))
    early = np.concatenate([actual[:half], bad[half:]])
    late = np.concatenate([bad[:half], actual[half:]])
    steady = actual + rng.normal(0.0, 4.0, len(actual))
    energy = {"early": 0.001, "late": 0.001, "steady": 0.002}
    return {"early": early, "late": late, "steady": steady}, actual, energy


def test_best_fixed_model_is_the_best_single_model_over_the_whole_stream() -> None:
    predictions, actual, energy = constructed()
    objective = Objective()
    name, score = best_fixed_model(predictions, actual, energy, objective, WINDOW)
    assert name == "steady"  # never best on a window, best over the stream
    chosen = oracle(predictions, actual, energy, objective, WINDOW)
    assert set(chosen.per_window) == {"early", "late"}
    assert chosen.objective > score  # the oracle switches, and bounds the fixed choice
    # cheap enough, the steady model's error stops mattering less than its energy
    energy_heavy = Objective(weights={"quality": 0.01, "energy": 0.99})
    assert best_fixed_model(predictions, actual, energy, energy_heavy, WINDOW)[0] == "early"


def row(
    name: str, quality: float, mj: float, objective: float, retrains: int = 0
) -> ApproachResult:
    return ApproachResult(name, mj / 1e3, {"r2": quality}, 0.1, 0, retrains, 0, "test", objective)


def result(*rows: ApproachResult) -> ReplayResult:
    return ReplayResult("traffic", "harmonia", 0, "test", 200, ["a", "b"], WINDOW, list(rows))


def test_domination_needs_higher_quality_and_less_energy_at_once() -> None:
    fixed = [row("single-a", 0.90, 1.0, 0.88), row("single-b+retrain", 0.95, 5.0, 0.90)]
    assert dominators(row("harmonia", 0.89, 2.0, 0.87), fixed) == ["single-a"]
    assert dominators(row("harmonia", 0.91, 2.0, 0.89), fixed) == []  # better quality
    assert dominators(row("harmonia", 0.89, 0.5, 0.87), fixed) == []  # less energy
    assert dominators(row("harmonia", 0.90, 2.0, 0.87), fixed) == []  # equal is not lower


def test_compare_regrets_against_best_fixed_and_the_oracle() -> None:
    replay = result(
        row("single-a", 0.90, 1.0, 0.88),
        row("single-a+retrain", 0.93, 3.0, 0.905, retrains=2),
        row("harmonia", 0.92, 1.5, 0.90),
        row("oracle", 0.94, 1.2, 0.91),
    )
    assert best_fixed(replay) is not None and best_fixed(replay).approach == "single-a+retrain"  # type: ignore[union-attr]
    name, standings = compare(replay)
    assert name == "single-a+retrain"
    ours = standings["harmonia"]
    assert ours.regret_best_fixed == pytest.approx(0.005)
    assert ours.regret_oracle == pytest.approx(0.01)
    assert ours.relative_regret_oracle == pytest.approx(0.01 / 0.91)
    assert not ours.dominated
    assert standings["single-a+retrain"].regret_best_fixed == 0.0
    assert standings["oracle"].dominated_by == ()
