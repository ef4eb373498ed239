"""HarmonE's formulas on hand-computed cases, and each of our fixes against the original."""

from __future__ import annotations

import numpy as np
import pytest

from harmonia.core.actions import ActionKind
from harmonia.core.knowledge import Knowledge, fingerprint
from harmonia.core.policy import Objective
from harmonia.core.scoring import normalize_energy, score
from harmonia.core.strategies.harmone import HarmonEStrategy
from harmonia.core.versions import ModelVersion
from support import Harness


def test_score_formula_by_hand() -> None:
    objective = Objective()  # β = 0.95, E range [0, 0.025] J
    assert score(0.9, 0.0125, objective) == pytest.approx(0.95 * 0.9 + 0.05 * 0.5)
    assert score(0.9, 0.0, objective) == pytest.approx(0.905)
    # E_norm is clamped: a window above the range costs no more than the whole energy term.
    assert normalize_energy(0.05, objective.energy_range_j) == 1.0
    assert score(0.9, 0.05, objective) == pytest.approx(0.855)
    assert normalize_energy(-1.0, (0.0, 0.025)) == 0.0


def test_ema_update_for_the_active_model_only() -> None:
    harness = Harness(HarmonEStrategy(alpha=0.0))
    harness.window(quality=0.9, energy_j=0.0125)  # S = 0.88
    assert harness.strategy.ema_scores_ == pytest.approx(
        {"linear": 0.5, "svm": 0.5, "lstm": 0.8 * 0.88 + 0.2 * 0.5}
    )
    harness.window(quality=0.9, energy_j=0.0125)
    assert harness.strategy.ema_scores_["lstm"] == pytest.approx(0.8 * 0.88 + 0.2 * 0.804)


def test_low_ema_triggers_a_switch_to_the_best_ema() -> None:
    strategy = HarmonEStrategy(alpha=0.0)
    harness = Harness(strategy)
    assert harness.window(quality=0.9, energy_j=0.0125) == []  # EMA 0.804 ≥ 0.78
    strategy.ema_scores_["svm"] = 0.7
    [plan] = harness.window(quality=0.7, energy_j=0.0125)  # S 0.69, EMA 0.7128 < 0.78
    assert plan.trigger.rule == "harmone: ema score below min_score"
    assert plan.trigger.values["ema_score"] == pytest.approx(0.8 * 0.69 + 0.2 * 0.804)
    # lstm's own EMA (0.7128) is still the best: with the fix it stays...
    assert plan.decision.kind is ActionKind.NONE
    assert "stay on lstm" in plan.decision.reason


def test_published_planner_forces_a_switch_even_when_the_active_model_is_best() -> None:
    strategy = HarmonEStrategy(alpha=0.0, stay_if_best=False)
    harness = Harness(strategy)
    harness.window(quality=0.9, energy_j=0.0125)
    strategy.ema_scores_["svm"] = 0.7
    [plan] = harness.window(quality=0.7, energy_j=0.0125)
    # ...while the published planner leaves it for the best *other* model.
    assert plan.decision.kind is ActionKind.SWITCH_MODEL
    assert plan.decision.model == "svm"


def test_energy_budget_violation_and_three_cycle_recovery_lock() -> None:
    strategy = HarmonEStrategy(alpha=0.0, max_energy=0.5, k=0.95)
    harness = Harness(strategy)
    # E_norm 0.8 > T = 0.5: violation; then T ← 0.5 + 0.95·(0.5 − 0.8) = 0.215
    [plan] = harness.window(quality=0.99, energy_j=0.02)
    assert plan.trigger.rule == "harmone: energy above budget"
    assert plan.trigger.values == pytest.approx({"energy_norm": 0.8, "budget": 0.5})
    assert strategy.budget_ == pytest.approx(0.215)
    assert plan.decision.model == "svm"  # listed before lstm and not measured: cheaper
    assert strategy.recovery_ == 3
    harness.knowledge.activate("svm")
    # For three windows nothing switches, however bad the score.
    for remaining in (2, 1, 0):
        assert harness.window(quality=0.0, energy_j=0.0) == []
        assert strategy.recovery_ == remaining
    [plan] = harness.window(quality=0.0, energy_j=0.0)
    assert plan.trigger.rule == "harmone: ema score below min_score"


def test_energy_violation_prefers_the_cheapest_measured_model() -> None:
    strategy = HarmonEStrategy(alpha=0.0)
    harness = Harness(strategy, active="lstm")
    harness.knowledge.profiles["linear"].energy_j = 0.0005
    harness.knowledge.profiles["svm"].energy_j = 0.004
    [plan] = harness.window(quality=0.99, energy_j=0.02)
    assert plan.decision.model == "linear"
    assert "lowest measured energy" in plan.decision.reason


def test_budget_is_bounded_unlike_the_published_one() -> None:
    fixed, published = HarmonEStrategy(alpha=0.0), HarmonEStrategy.published()
    published.alpha = 0.0
    for strategy in (fixed, published):
        harness = Harness(strategy)
        for _ in range(10):  # E_norm 0.1: T grows by 0.95·0.4 = 0.38 a window
            harness.window(quality=0.99, energy_j=0.0025)
    assert fixed.budget_ == 1.0
    assert published.budget_ == pytest.approx(0.5 + 10 * 0.38)


def test_exploration_picks_a_random_other_model_reproducibly() -> None:
    def choices(seed: int) -> list[str | None]:
        strategy = HarmonEStrategy(alpha=1.0)
        harness = Harness(strategy, seed=seed)
        return [harness.window(quality=0.0, energy_j=0.0)[0].decision.model for _ in range(20)]

    picked = choices(3)
    assert picked == choices(3)
    assert set(picked) == {"linear", "svm"}  # never the model in service


def _versions(knowledge: Knowledge) -> None:
    rng = np.random.default_rng(0)
    knowledge.add_version(
        ModelVersion("lstm", 1, fingerprint=fingerprint(rng.normal(100, 20, 2000)))
    )
    knowledge.add_version(
        ModelVersion("lstm", 2, fingerprint=fingerprint(rng.normal(160, 20, 2000)))
    )
    knowledge.add_version(
        ModelVersion("lstm", 3, fingerprint=fingerprint(rng.normal(40, 20, 2000)))
    )
    knowledge.activate("lstm", 3)


def test_drift_reuses_the_closest_archived_version() -> None:
    harness = Harness(HarmonEStrategy(alpha=0.0))
    _versions(harness.knowledge)
    today = np.random.default_rng(1).normal(160, 20, 1000)
    [plan] = harness.window(quality=0.99, energy_j=0.001, drift_kl=2.0, drift_values=today)
    assert plan.decision.kind is ActionKind.REUSE_VERSION
    assert (plan.decision.model, plan.decision.version) == ("lstm", 2)
    assert plan.trigger.values["kl_to_version"] < 0.75


def test_drift_retrains_when_no_archived_version_fits() -> None:
    harness = Harness(HarmonEStrategy(alpha=0.0))
    _versions(harness.knowledge)
    today = np.random.default_rng(1).normal(400, 20, 1000)
    [plan] = harness.window(quality=0.99, energy_j=0.001, drift_kl=5.0, drift_values=today)
    assert plan.decision.kind is ActionKind.RETRAIN
    assert plan.decision.model == "lstm"
    assert ">= 0.75" in plan.decision.reason


def test_no_drift_below_the_threshold() -> None:
    harness = Harness(HarmonEStrategy(alpha=0.0))
    assert harness.window(quality=0.99, energy_j=0.001, drift_kl=0.5) == []


def test_published_defaults() -> None:
    strategy = HarmonEStrategy()
    assert (strategy.gamma, strategy.min_score, strategy.k, strategy.alpha) == (
        0.8,
        0.78,
        0.95,
        0.1,
    )
    assert strategy.drift_threshold == 0.75 and strategy.reuse_threshold == 0.75
    objective = Objective()
    assert objective.weights.quality == 0.95 and objective.energy_range_j == (0.0, 0.025)
    published = HarmonEStrategy.published()
    assert published.budget_bounds is None and published.stay_if_best is False


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"gamma": 1.5}, "gamma"),
        ({"alpha": -0.1}, "alpha"),
        ({"budget_bounds": (1.0, 0.0)}, "budget_bounds"),
    ],
)
def test_invalid_parameters_are_named(params: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        HarmonEStrategy(**params)


def test_an_energy_switch_quotes_both_measured_energies_in_mj() -> None:
    """One source: the reason quotes the cheaper model's measured energy and the active
    one's, which is this window's ``energy_j`` (the decision's ``context``, the dashboard's
    figure): in mJ as the dashboard shows them, not ``0.0005 J``."""
    strategy = HarmonEStrategy(alpha=0.0)
    harness = Harness(strategy, active="lstm")
    harness.knowledge.profiles["linear"].energy_j = 0.0005
    [plan] = harness.window(quality=0.99, energy_j=0.02)
    assert "lowest measured energy (0.5 mJ per inference; lstm 20 mJ)" in plan.decision.reason
