"""The harmonia strategy's rules on hand-made windows."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest

from harmonia.core.actions import ActionKind
from harmonia.core.knowledge import fingerprint
from harmonia.core.strategies.harmonia import HarmoniaStrategy
from harmonia.core.versions import ModelVersion
from harmonia.drift import KLDivergenceDetector
from support import Harness


def stored(harness: Harness, **per_model: dict[str, float]) -> None:
    """Give each model a version 1 with stored measurements (held-out R², energy, cost)."""
    training = fingerprint(np.random.default_rng(0).normal(100, 20, 2000))
    for model, metrics in per_model.items():
        harness.knowledge.add_version(
            ModelVersion(model, 1, fingerprint=training, metadata=metrics)
        )


def test_serves_the_cheapest_model_whose_stored_quality_is_good_enough() -> None:
    harness = Harness(HarmoniaStrategy(), active="lstm")
    stored(
        harness,
        linear={"r2": 0.910, "energy_j_per_inference": 0.00002},
        svm={"r2": 0.905, "energy_j_per_inference": 0.00002},
        lstm={"r2": 0.905, "energy_j_per_inference": 0.0008},
    )
    [plan] = harness.window(quality=0.93, energy_j=0.0008)
    assert plan.decision.kind is ActionKind.SWITCH_MODEL
    assert plan.decision.model == "linear"
    assert "held-out R²" in plan.decision.reason


def test_keeps_the_expensive_model_when_cheaper_ones_promise_less() -> None:
    harness = Harness(HarmoniaStrategy(), active="lstm")
    stored(
        harness,
        linear={"r2": 0.80, "energy_j_per_inference": 0.0009},
        svm={"r2": 0.79, "energy_j_per_inference": 0.0009},
        lstm={"r2": 0.905, "energy_j_per_inference": 0.0011},
    )
    assert harness.window(quality=0.93, energy_j=0.0011) == []


def test_a_healthy_window_on_a_model_that_promises_less_than_the_best_moves_to_the_best() -> None:
    """The rule that chose the first model holds on every healthy window: the cheapest model
    within ``tolerance`` of the best promise serves. svm serves (after a detour, say), lstm
    promises 0.1 more: lstm serves, unless the tolerance admits svm (vision-30009: after a
    dark stretch the small CNN kept serving clean images for 650 images, where the medium
    one promised 1.3 points more and had served them before)."""
    for tolerance, expected in ((0.0, ["lstm"]), (0.11, [])):
        harness = Harness(HarmoniaStrategy(tolerance=tolerance), active="svm")
        stored(
            harness,
            linear={"r2": 0.79, "energy_j_per_inference": 0.0009},
            svm={"r2": 0.80, "energy_j_per_inference": 0.0009},
            lstm={"r2": 0.905, "energy_j_per_inference": 0.0011},
        )
        plans = harness.window(quality=0.93, energy_j=0.0009)
        assert [p.decision.model for p in plans] == expected, tolerance
        if plans:
            assert plans[0].decision.kind is ActionKind.SWITCH_MODEL
            assert "promises more" in plans[0].decision.reason


def test_drift_alone_does_not_trigger_a_retrain() -> None:
    harness = Harness(HarmoniaStrategy(), active="lstm")
    stored(harness, lstm={"r2": 0.9, "energy_j_per_inference": 0.001})
    assert harness.window(quality=0.93, energy_j=0.001, drift_kl=5.0) == []


def test_low_score_without_drift_waits() -> None:
    harness = Harness(HarmoniaStrategy(), active="lstm")
    [plan] = harness.window(quality=0.5, energy_j=0.001, drift_kl=0.1)
    assert plan.decision.kind is ActionKind.NONE
    assert "no drift" in plan.decision.reason


def test_low_score_with_drift_reuses_a_closer_archived_version() -> None:
    harness = Harness(HarmoniaStrategy(), active="lstm")
    rng = np.random.default_rng(0)
    harness.knowledge.add_version(
        ModelVersion("lstm", 1, fingerprint=fingerprint(rng.normal(100, 20, 2000)))
    )
    harness.knowledge.add_version(
        ModelVersion("lstm", 2, fingerprint=fingerprint(rng.normal(200, 20, 2000)))
    )
    harness.knowledge.activate("lstm", 1)
    today = rng.normal(200, 20, 500)
    [plan] = harness.window(quality=0.5, energy_j=0.001, drift_kl=3.0, drift_values=today)
    assert plan.decision.kind is ActionKind.REUSE_VERSION
    assert plan.decision.version == 2


def test_low_score_with_drift_reuses_another_models_version_tuned_for_such_data() -> None:
    """A version tuned for today's data is a remedy whichever model it belongs to: fog came
    back while medium served, and large v2 was tuned for fog (a load, no training)."""
    harness = Harness(HarmoniaStrategy(), active="svm")
    rng = np.random.default_rng(0)
    clean = fingerprint(rng.normal(100, 20, 2000))
    for model in ("svm", "lstm"):
        harness.knowledge.add_version(
            ModelVersion(model, 1, fingerprint=clean, metadata={"r2": 0.9})
        )
    tuned = fingerprint(rng.normal(200, 20, 2000))
    harness.knowledge.add_version(ModelVersion("lstm", 2, fingerprint=tuned, metadata={"r2": 0.8}))
    harness.knowledge.activate("lstm", 1)
    harness.knowledge.activate("svm")
    today = rng.normal(200, 20, 500)
    [plan] = harness.window(quality=0.5, energy_j=0.001, drift_kl=3.0, drift_values=today)
    assert plan.decision.kind is ActionKind.REUSE_VERSION
    assert (plan.decision.model, plan.decision.version) == ("lstm", 2)


def test_low_score_with_drift_switches_to_a_model_that_did_better_in_the_same_state() -> None:
    harness = Harness(HarmoniaStrategy(), active="svm")
    harness.window(quality=0.9, energy_j=0.001, drift_kl=3.0)  # svm, drifted, healthy
    harness.knowledge.activate("lstm")
    [plan] = harness.window(quality=0.5, energy_j=0.001, drift_kl=3.0)
    assert plan.decision.kind is ActionKind.SWITCH_MODEL
    assert plan.decision.model == "svm"


def test_evidence_from_another_drift_state_is_not_trusted() -> None:
    harness = Harness(HarmoniaStrategy(), active="svm")
    harness.window(quality=0.9, energy_j=0.001, drift_kl=0.1)  # svm, not drifted
    harness.knowledge.activate("lstm")
    [plan] = harness.window(quality=0.5, energy_j=0.001, drift_kl=3.0)
    assert plan.decision.kind is ActionKind.RETRAIN  # nothing known for drifted data


def test_evidence_on_drifted_data_counts_only_where_the_data_looks_alike() -> None:
    """svm read drifted data around 200 well. Data around 200 again: switch to svm. Data
    around 20 (another drift): that score says nothing, nothing is known, retrain."""
    rng = np.random.default_rng(1)
    for today, expected in ((200.0, ActionKind.SWITCH_MODEL), (20.0, ActionKind.RETRAIN)):
        harness = Harness(HarmoniaStrategy(), active="svm")
        harness.window(
            quality=0.9, energy_j=0.001, drift_kl=3.0, drift_values=rng.normal(200, 20, 500)
        )
        harness.knowledge.activate("lstm")
        values = rng.normal(today, 20, 500)
        [plan] = harness.window(quality=0.5, energy_j=0.001, drift_kl=3.0, drift_values=values)
        assert plan.decision.kind is expected, today


def promising(harness: Harness) -> None:
    """Stored promises (accuracy is the quality here): lstm promises most, linear least."""
    stored(
        harness,
        linear={"r2": 0.80, "energy_j_per_inference": 0.0001},
        svm={"r2": 0.85, "energy_j_per_inference": 0.0002},
        lstm={"r2": 0.95, "energy_j_per_inference": 0.0004},
    )


def test_exploring_tries_every_untried_model_best_promise_first_before_a_retrain() -> None:
    harness = Harness(HarmoniaStrategy(explore=True), active="svm")
    promising(harness)
    [plan] = harness.window(quality=0.5, energy_j=0.0002, drift_kl=3.0)
    assert plan.decision.kind is ActionKind.SWITCH_MODEL
    assert plan.decision.model == "lstm"
    assert "has not served data like this yet" in plan.decision.reason
    # linear promises least, but only serving it shows what it reads under this drift
    harness.knowledge.activate("lstm")
    [plan] = harness.window(quality=0.5, energy_j=0.0004, drift_kl=3.0)
    assert plan.decision.kind is ActionKind.SWITCH_MODEL
    assert plan.decision.model == "linear"
    # every model has a (low) score on drifted data: nothing is left to try, retrain
    harness.knowledge.activate("linear")
    [plan] = harness.window(quality=0.5, energy_j=0.0001, drift_kl=3.0)
    assert plan.decision.kind is ActionKind.RETRAIN
    assert plan.decision.model == "linear"


def test_exploring_goes_back_to_a_seen_model_only_if_it_scored_well_enough() -> None:
    """svm's drifted score (0.7, the window the drift began in) beats lstm's 0.4 but is below
    min_score: linear, untried, comes first. Once every model is seen, the best goes back."""
    harness = Harness(HarmoniaStrategy(explore=True, min_score=0.8), active="svm")
    promising(harness)
    [plan] = harness.window(quality=0.7, energy_j=0.0002, drift_kl=3.0)
    assert plan.decision.model == "lstm"
    harness.knowledge.activate("lstm")
    [plan] = harness.window(quality=0.4, energy_j=0.0004, drift_kl=3.0)
    assert (plan.decision.kind, plan.decision.model) == (ActionKind.SWITCH_MODEL, "linear")
    harness.knowledge.activate("linear")
    [plan] = harness.window(quality=0.3, energy_j=0.0001, drift_kl=3.0)
    assert (plan.decision.kind, plan.decision.model) == (ActionKind.SWITCH_MODEL, "svm")
    assert plan.decision.reason.startswith("svm scored")
    # a seen model at min_score or above is a remedy at once, untried ones or not
    harness = Harness(HarmoniaStrategy(explore=True, min_score=0.8), active="svm")
    promising(harness)
    harness.window(quality=0.85, energy_j=0.0002, drift_kl=3.0)  # svm, drifted, healthy
    harness.knowledge.activate("lstm")
    [plan] = harness.window(quality=0.4, energy_j=0.0004, drift_kl=3.0)
    assert (plan.decision.kind, plan.decision.model) == (ActionKind.SWITCH_MODEL, "svm")


def test_a_retrain_goes_to_a_model_that_reads_the_data_as_well_and_costs_less_to_retrain() -> None:
    """lstm is in service, svm scored about as low on the same drifted data (within the
    evidence margin: windows are noisy) and costs 1 J to retrain, not 30 J: retrain svm."""
    harness = Harness(HarmoniaStrategy(drift_patience=2, evidence_margin=0.05), active="svm")
    stored(harness, svm={"retrain_joules": 1.0}, lstm={"retrain_joules": 30.0})
    [first] = harness.window(quality=0.52, energy_j=0.001, drift_kl=3.0)
    assert first.decision.kind is ActionKind.NONE  # one low window may be a transient
    harness.knowledge.activate("lstm")
    [plan] = harness.window(quality=0.50, energy_j=0.001, drift_kl=3.0)
    assert plan.decision.kind is ActionKind.RETRAIN
    assert plan.decision.model == "svm"
    assert "costs less to retrain: 1 J" in plan.decision.reason
    # with the margin at the tolerance (the default), 0.52 against 0.50 is evidence enough
    harness = Harness(HarmoniaStrategy(drift_patience=2), active="svm")
    harness.window(quality=0.52, energy_j=0.001, drift_kl=3.0)
    harness.knowledge.activate("lstm")
    [plan] = harness.window(quality=0.50, energy_j=0.001, drift_kl=3.0)
    assert plan.decision.kind is ActionKind.SWITCH_MODEL
    assert plan.decision.model == "svm"


def test_exploring_needs_drift_and_is_off_by_default() -> None:
    # no drift: a low window may be a hard one; the model stays, as without exploring
    harness = Harness(HarmoniaStrategy(explore=True), active="svm")
    promising(harness)
    [plan] = harness.window(quality=0.5, energy_j=0.0002, drift_kl=0.1)
    assert plan.decision.kind is ActionKind.NONE
    # off (the default): a drifted low window retrains the model in service
    harness = Harness(HarmoniaStrategy(), active="svm")
    promising(harness)
    [plan] = harness.window(quality=0.5, energy_j=0.0002, drift_kl=3.0)
    assert plan.decision.kind is ActionKind.RETRAIN


def test_retrain_is_priced_with_the_objectives_exchange_rate() -> None:
    # 40 J spread over 10 windows of 100 inferences is 40 mJ an inference: 0.05 · 40/25 = 0.08
    # of score, more than the 0.78 − 0.75 = 0.03 a retrain could win back.
    harness = Harness(HarmoniaStrategy(), active="lstm")
    stored(harness, lstm={"training_joules": 40.0})
    [plan] = harness.window(quality=0.75, energy_j=0.001, drift_kl=3.0)
    assert plan.decision.kind is ActionKind.NONE
    assert "costs 40 J" in plan.decision.reason
    # The same retrain is worth it when the score has fallen far enough.
    harness = Harness(HarmoniaStrategy(), active="lstm")
    stored(harness, lstm={"training_joules": 40.0})
    [plan] = harness.window(quality=0.3, energy_j=0.001, drift_kl=3.0)
    assert plan.decision.kind is ActionKind.RETRAIN


def test_retrains_are_spaced_by_the_cooldown() -> None:
    harness = Harness(HarmoniaStrategy(retrain_cooldown=3), active="lstm")
    kinds = [
        harness.window(quality=0.2, energy_j=0.001, drift_kl=3.0)[0].decision.kind for _ in range(6)
    ]
    assert kinds == [ActionKind.RETRAIN] + [ActionKind.NONE] * 3 + [
        ActionKind.RETRAIN,
        ActionKind.NONE,
    ]


def test_a_low_score_that_persists_allows_a_retrain_without_drift() -> None:
    harness = Harness(HarmoniaStrategy(patience=2), active="lstm")
    first = harness.window(quality=0.5, energy_j=0.001, drift_kl=0.1)[0].decision
    assert first.kind is ActionKind.NONE and "no drift" in first.reason
    second = harness.window(quality=0.5, energy_j=0.001, drift_kl=0.1)[0].decision
    assert second.kind is ActionKind.RETRAIN and "stayed low 2 windows" in second.reason
    # A healthy window in between starts the count again.
    harness = Harness(HarmoniaStrategy(patience=2), active="lstm")
    harness.window(quality=0.5, energy_j=0.001, drift_kl=0.1)
    assert harness.window(quality=0.95, energy_j=0.001, drift_kl=0.1) == []
    [again] = harness.window(quality=0.5, energy_j=0.001, drift_kl=0.1)
    assert again.decision.kind is ActionKind.NONE


def test_one_low_drifted_window_is_a_transient_until_the_next_is_low_too() -> None:
    """With ``drift_patience`` 2 a drifted low window waits (the jump at a drift's onset
    scores badly once); a second in a row retrains; a healthy one between starts again."""
    harness = Harness(HarmoniaStrategy(drift_patience=2), active="lstm")
    first = harness.window(quality=0.5, energy_j=0.001, drift_kl=3.0)[0].decision
    assert first.kind is ActionKind.NONE and "transient" in first.reason
    second = harness.window(quality=0.5, energy_j=0.001, drift_kl=3.0)[0].decision
    assert second.kind is ActionKind.RETRAIN and "it drifted" in second.reason
    harness = Harness(HarmoniaStrategy(drift_patience=2), active="lstm")
    harness.window(quality=0.5, energy_j=0.001, drift_kl=3.0)
    assert harness.window(quality=0.95, energy_j=0.001, drift_kl=3.0) == []
    [again] = harness.window(quality=0.5, energy_j=0.001, drift_kl=3.0)
    assert again.decision.kind is ActionKind.NONE
    # The default (1) retrains on the first drifted low window, as before.
    [plan] = Harness(HarmoniaStrategy(), active="lstm").window(
        quality=0.5, energy_j=0.001, drift_kl=3.0
    )
    assert plan.decision.kind is ActionKind.RETRAIN


def test_a_longer_payback_horizon_makes_a_retrain_worth_it() -> None:
    # The 40 J retrain refused above (over the 10-window cooldown) pays back over 100 windows:
    # 0.05 · 4 mJ / 25 mJ = 0.008 of score, less than the 0.78 − 0.7605 = 0.0195 it can win
    # back (the window scores 0.95 · 0.75 + 0.05 · (1 − 1/25)), less the 0.01 margin.
    harness = Harness(HarmoniaStrategy(payback_windows=100), active="lstm")
    stored(harness, lstm={"training_joules": 40.0})
    [plan] = harness.window(quality=0.75, energy_j=0.001, drift_kl=3.0)
    assert plan.decision.kind is ActionKind.RETRAIN


def test_what_a_retrain_wins_back_counts_beyond_what_chance_moves_a_window_by() -> None:
    """The same retrain, where a window's score moves by 0.015 by chance (``evidence_margin``):
    of the 0.0195 it could win back, 0.0045 is sure, less than its 0.008 price."""
    harness = Harness(HarmoniaStrategy(payback_windows=100, evidence_margin=0.015), active="lstm")
    stored(harness, lstm={"training_joules": 40.0})
    [plan] = harness.window(quality=0.75, energy_j=0.001, drift_kl=3.0)
    assert plan.decision.kind is ActionKind.NONE
    assert "less the 0.015 a window's score moves by chance" in plan.decision.reason
    # A window that fell further is worth the retrain.
    harness = Harness(HarmoniaStrategy(payback_windows=100, evidence_margin=0.015), active="lstm")
    stored(harness, lstm={"training_joules": 40.0})
    [plan] = harness.window(quality=0.72, energy_j=0.001, drift_kl=3.0)
    assert plan.decision.kind is ActionKind.RETRAIN


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("tolerance", -1),
        ("retrain_cooldown", 0),
        ("evidence_ttl", 0),
        ("patience", 0),
        ("drift_patience", 0),
        ("payback_windows", 0),
        ("evidence_margin", -0.1),
        ("context_threshold", -1),
        ("lookahead", 0),
    ],
)
def test_invalid_parameters_are_named(param: str, value: float) -> None:
    with pytest.raises(ValueError, match=param):
        HarmoniaStrategy(**{param: value})


def test_a_switch_quotes_the_energy_per_inference_in_mj_as_the_window_measured_it() -> None:
    """One source: the reason quotes the active model's energy as its window measured it
    (what the decision's ``context.energy_j`` and the dashboard show: 0.8 mJ), not the 1.1 mJ
    stored with its version, and in mJ, not as ``0.0008 J``."""
    harness = Harness(HarmoniaStrategy(), active="lstm")
    stored(
        harness,
        linear={"r2": 0.910, "energy_j_per_inference": 0.00002},
        lstm={"r2": 0.905, "energy_j_per_inference": 0.0011},
    )
    [plan] = harness.window(quality=0.93, energy_j=0.0008)
    assert plan.decision.model == "linear"
    assert "for 0.02 mJ instead of 0.8 mJ per inference" in plan.decision.reason
    assert " J" not in plan.decision.reason.replace(" mJ", "")


def test_a_switch_names_the_training_energy_spread_apart_from_the_measured_energy() -> None:
    """Where training energy is spread over the inferences the reason still quotes the
    measured 0.8 mJ, and the cost it ranked by (0.8 + 3 J / (100 · 30) = 1.8 mJ) apart."""
    harness = Harness(HarmoniaStrategy(), active="lstm")
    stored(
        harness,
        linear={"r2": 0.910, "energy_j_per_inference": 0.00002},
        lstm={"r2": 0.905, "energy_j_per_inference": 0.0008, "training_joules": 3.0},
    )
    [plan] = harness.window(quality=0.93, energy_j=0.0008)
    reason = plan.decision.reason
    assert "for 0.02 mJ instead of 0.8 mJ per inference" in reason
    assert "0.02 mJ instead of 1.8 mJ with training energy spread over 30 windows" in reason


def test_a_model_scoring_at_its_held_out_promise_is_not_retrained() -> None:
    """A retrain restores what drift took: a model whose version promised less than
    ``min_score`` and scores just that has lost nothing (a cheap model on clean data)."""
    harness = Harness(HarmoniaStrategy(patience=2), active="lstm")
    stored(harness, lstm={"r2": 0.75, "energy_j_per_inference": 0.001})  # score 0.7605
    for _ in range(3):
        [plan] = harness.window(quality=0.76, energy_j=0.001, drift_kl=0.1)
        assert plan.decision.kind is ActionKind.NONE
    assert "held-out promise (0.7605)" in plan.decision.reason
    # Below its promise, what drift took is worth a retrain again.
    [plan] = harness.window(quality=0.5, energy_j=0.001, drift_kl=3.0)
    assert plan.decision.kind is ActionKind.RETRAIN


def test_exploring_follows_a_fall_not_a_model_reading_a_drift_as_it_did() -> None:
    """svm's score falls below min_score on drifted data: try lstm. The switch did not
    happen, and svm reads the drift at 0.77 (within the 0.05 margin of 0.78: a noisy
    window, not a change): no gamble on an untried model. A fall to 0.70 is a change."""
    for second, expected in ((0.77, ActionKind.RETRAIN), (0.70, ActionKind.SWITCH_MODEL)):
        strategy = HarmoniaStrategy(explore=True, min_score=0.8, evidence_margin=0.05)
        harness = Harness(strategy, active="svm")
        promising(harness)
        [plan] = harness.window(quality=0.78, energy_j=0.0002, drift_kl=3.0)
        assert (plan.decision.kind, plan.decision.model) == (ActionKind.SWITCH_MODEL, "lstm")
        [plan] = harness.window(quality=second, energy_j=0.0002, drift_kl=3.0)
        assert plan.decision.kind is expected, second


def stress_tested(harness: Harness) -> None:
    """Clean data around 100; a stress test under "dark" (data around 20): linear reads it
    at 0.9, lstm at 0.3, svm at 0.6 (the serving model's own is not consulted)."""
    clean = fingerprint(np.random.default_rng(0).normal(100, 5, 2000))
    dark = {"linear": 0.9, "svm": 0.6, "lstm": 0.3}
    for model, accuracy in dark.items():
        metadata = {
            "r2": 0.95 if model == "lstm" else 0.85,
            "energy_j_per_inference": 0.0002,
            "context.dark.r2": accuracy,
            "context.dark.drift_mean": 20.0,
            "context.fog.r2": 1.0 - accuracy,
            "context.fog.drift_mean": 180.0,
        }
        harness.knowledge.add_version(ModelVersion(model, 1, fingerprint=clean, metadata=metadata))


def test_exploring_tries_what_the_stress_test_promises_for_data_like_the_latest() -> None:
    """The window's latest quarter looks like the stress test's "dark": linear, which reads
    dark data best, goes first (not lstm, the best on clean data)."""
    harness = Harness(HarmoniaStrategy(explore=True, min_score=0.8), active="svm")
    stress_tested(harness)
    rng = np.random.default_rng(2)
    values = np.concatenate([rng.normal(100, 5, 60), rng.normal(20, 5, 40)])
    [plan] = harness.window(quality=0.4, energy_j=0.0002, drift_kl=3.0, drift_values=values)
    assert (plan.decision.kind, plan.decision.model) == (ActionKind.SWITCH_MODEL, "linear")
    assert "stress test under dark" in plan.decision.reason
    # the same window in clean-looking data: no stress test applies, the best promise first
    harness = Harness(HarmoniaStrategy(explore=True, min_score=0.8), active="svm")
    stress_tested(harness)
    values = rng.normal(100, 5, 100)
    [plan] = harness.window(quality=0.4, energy_j=0.0002, drift_kl=3.0, drift_values=values)
    assert plan.decision.model == "lstm"


def test_a_model_the_stress_test_promises_no_better_than_the_window_is_not_tried() -> None:
    """svm reads this dark data at 0.7: linear (0.9) is worth a try, lstm (0.3) is not;
    once linear is seen, nothing is left to try: retrain."""
    harness = Harness(HarmoniaStrategy(explore=True, min_score=0.8), active="svm")
    stress_tested(harness)
    dark = np.random.default_rng(3).normal(20, 5, 100)
    [plan] = harness.window(quality=0.7, energy_j=0.0002, drift_kl=3.0, drift_values=dark)
    assert plan.decision.model == "linear"
    harness.knowledge.activate("linear")
    [plan] = harness.window(quality=0.75, energy_j=0.0002, drift_kl=3.0, drift_values=dark)
    assert plan.decision.kind is ActionKind.RETRAIN


def test_a_healthy_window_brings_back_the_version_trained_on_data_like_it() -> None:
    """svm v2 was tuned for data around 200 and still serves once the data is back around
    100: v1, trained on such data, promises more there (a load, no training)."""
    harness = Harness(HarmoniaStrategy(promise_in_context=True), active="svm")
    rng = np.random.default_rng(4)
    clean = fingerprint(rng.normal(100, 20, 2000))
    tuned = fingerprint(rng.normal(200, 20, 2000))
    metadata = {"r2": 0.9, "energy_j_per_inference": 0.0002}
    harness.knowledge.add_version(ModelVersion("svm", 1, fingerprint=clean, metadata=metadata))
    harness.knowledge.add_version(ModelVersion("svm", 2, fingerprint=tuned, metadata=metadata))
    harness.knowledge.activate("svm", 2)
    today = rng.normal(100, 20, 500)
    [plan] = harness.window(quality=0.92, energy_j=0.0002, drift_kl=3.0, drift_values=today)
    assert (plan.decision.kind, plan.decision.version) == (ActionKind.REUSE_VERSION, 1)
    assert "was trained on data like this window's" in plan.decision.reason


def test_with_a_context_threshold_scores_count_only_on_data_alike_drifted_or_not() -> None:
    """Drift is measured against the serving version's training data, so "not drifted"
    under a tuned version is other data than under version 1: svm's healthy score on data
    around 100 says nothing of data around 200. Without the threshold it is trusted."""
    rng = np.random.default_rng(5)
    for threshold, expected in ((0.75, ActionKind.NONE), (None, ActionKind.SWITCH_MODEL)):
        harness = Harness(HarmoniaStrategy(context_threshold=threshold), active="svm")
        harness.window(
            quality=0.95, energy_j=0.001, drift_kl=0.1, drift_values=rng.normal(100, 20, 500)
        )
        harness.knowledge.activate("lstm")
        values = rng.normal(200, 20, 500)
        [plan] = harness.window(quality=0.5, energy_j=0.001, drift_kl=0.1, drift_values=values)
        assert plan.decision.kind is expected, threshold


def test_inputs_like_a_condition_the_model_reads_badly_switch_before_any_label() -> None:
    """Five inputs around 20 look like the stress test's "dark": svm promises 0.6 there,
    linear 0.9, so linear serves before the window's labels come. Clean-looking inputs,
    inputs not drifted, or a serving model already seen to score well on such data
    change nothing."""
    strategy = HarmoniaStrategy(min_score=0.8, lookahead=5)
    harness = Harness(strategy, active="svm")
    stress_tested(harness)
    rng = np.random.default_rng(6)
    dark = rng.normal(20, 5, 5)
    [plan] = harness.look(drift_kl=3.0, drift_values=dark)
    assert (plan.decision.kind, plan.decision.model) == (ActionKind.SWITCH_MODEL, "linear")
    assert "look like dark" in plan.decision.reason
    assert harness.look(drift_kl=3.0, drift_values=rng.normal(100, 5, 5)) == []
    assert harness.look(drift_kl=0.1, drift_values=dark) == []
    # svm scored 0.85 on data like this: the stress test is overruled by what was seen
    harness.window(quality=0.85, energy_j=0.0002, drift_kl=3.0, drift_values=rng.normal(20, 5, 100))
    assert harness.look(drift_kl=3.0, drift_values=dark) == []


def test_inputs_like_a_condition_no_model_reads_well_change_nothing() -> None:
    """Under "fog" (around 180) linear promises 0.1, svm 0.4, lstm 0.7: none reaches
    min_score, so nothing is switched ahead of the labels (a retrain needs them)."""
    harness = Harness(HarmoniaStrategy(min_score=0.8, lookahead=5), active="svm")
    stress_tested(harness)
    fog = np.random.default_rng(7).normal(180, 5, 5)
    assert harness.look(drift_kl=3.0, drift_values=fog) == []


def test_a_few_inputs_that_stray_by_chance_are_not_taken_for_a_condition() -> None:
    """Training data around 100 with a spread of 40; "dark" tested around 60. Five inputs
    around 75 lie nearer dark than the training mean, but five values stray that far by
    chance: no switch. A hundred such inputs do not: the window is taken for dark."""
    harness = Harness(HarmoniaStrategy(min_score=0.8, lookahead=5), active="svm")
    spread = fingerprint(np.random.default_rng(8).normal(100, 40, 2000))
    for model, accuracy in {"linear": 0.9, "svm": 0.6, "lstm": 0.3}.items():
        metadata = {
            "r2": 0.85,
            "energy_j_per_inference": 0.0002,
            "context.dark.r2": accuracy,
            "context.dark.drift_mean": 60.0,
        }
        harness.knowledge.add_version(ModelVersion(model, 1, fingerprint=spread, metadata=metadata))
    assert harness.look(drift_kl=3.0, drift_values=np.full(5, 75.0)) == []
    [plan] = harness.look(drift_kl=3.0, drift_values=np.full(100, 75.0))
    assert plan.decision.model == "linear"


def test_a_second_input_feature_tells_apart_what_the_drift_value_confuses() -> None:
    """ "noise" was tested on data whose drift values lie only a little above the training
    data's (105 against 100, a spread of 5), but whose sharpness jumps (2.0 against 0.2).
    Five inputs around 106: by drift value alone chance; with their sharpness around 2.1,
    noise (svm promises 0.5 there, linear 0.9); with a clean sharpness, not noise at all."""
    harness = Harness(HarmoniaStrategy(min_score=0.8, lookahead=5), active="svm")
    own = fingerprint(np.random.default_rng(9).normal(100, 5, 2000))
    for model, accuracy in {"linear": 0.9, "svm": 0.5, "lstm": 0.3}.items():
        metadata = {
            "r2": 0.85,
            "energy_j_per_inference": 0.0002,
            "inputs.sharpness_mean": 0.2,
            "inputs.sharpness_std": 0.05,
            "context.noise.r2": accuracy,
            "context.noise.drift_mean": 105.0,
            "context.noise.sharpness_mean": 2.0,
            "context.blur.r2": 0.9,
            "context.blur.drift_mean": 99.0,
            "context.blur.sharpness_mean": 0.1,
        }
        harness.knowledge.add_version(ModelVersion(model, 1, fingerprint=own, metadata=metadata))
    inputs = np.full(5, 106.0)
    assert harness.look(drift_kl=3.0, drift_values=inputs) == []
    noisy = {"sharpness": np.full(5, 2.1)}
    [plan] = harness.look(drift_kl=3.0, drift_values=inputs, features=noisy)
    assert (plan.decision.kind, plan.decision.model) == (ActionKind.SWITCH_MODEL, "linear")
    assert "look like noise" in plan.decision.reason
    clean = {"sharpness": np.full(5, 0.21)}
    assert harness.look(drift_kl=3.0, drift_values=inputs, features=clean) == []


def test_healthy_windows_do_not_alternate_between_two_versions_trained_on_like_data() -> None:
    """svm v2 was tuned on data a little off v1's (around 120 against 100) and promises a
    little more. On data around 100 both count as trained on data like it, by chance from
    window to window: an archived version replaces the one in use only where it was trained
    on data more like the window's, so v1 stays in use (vision-30005 went v1, v2, v1, v2...
    after a fog stretch, one reuse per window or two)."""
    strategy = HarmoniaStrategy(promise_in_context=True, drift_threshold=0.6, tolerance=0.0)
    harness = Harness(strategy, active="svm")
    harness.detectors = {"kl": partial(KLDivergenceDetector, bins=10)}  # as vision's policy
    rng = np.random.default_rng(10)
    clean = fingerprint(rng.normal(100, 20, 2000))
    near = fingerprint(rng.normal(120, 20, 2000))
    harness.knowledge.add_version(
        ModelVersion(
            "svm", 1, fingerprint=clean, metadata={"r2": 0.90, "energy_j_per_inference": 0.0002}
        )
    )
    harness.knowledge.add_version(
        ModelVersion(
            "svm", 2, fingerprint=near, metadata={"r2": 0.91, "energy_j_per_inference": 0.0002}
        )
    )
    harness.knowledge.activate("svm", 1)
    reuses = []
    for _ in range(20):
        values = rng.normal(100, 20, 25)
        for plan in harness.window(
            quality=0.92, energy_j=0.0002, drift_kl=0.1, drift_values=values
        ):
            if plan.decision.kind is ActionKind.REUSE_VERSION:
                reuses.append(plan.decision.version)
                harness.knowledge.activate("svm", plan.decision.version)
    assert len(reuses) <= 1, reuses


def test_a_score_on_a_window_that_ended_in_a_drift_does_not_overrule_the_look_ahead() -> None:
    """The window just closed was clean but for its last five inputs (dark), and svm scored
    0.85 on it: not a score on dark data. The next look, on dark inputs alone, still moves
    to linear (vision-30026 served 29 dark images on the large CNN that way). (A tolerance
    that admits svm's promise on clean data keeps it in service on the window.)"""
    strategy = HarmoniaStrategy(min_score=0.8, lookahead=5, tolerance=0.2)
    harness = Harness(strategy, active="svm")
    stress_tested(harness)
    rng = np.random.default_rng(11)
    values = np.concatenate([rng.normal(100, 5, 95), rng.normal(20, 5, 5)])
    assert harness.window(quality=0.85, energy_j=0.0002, drift_kl=3.0, drift_values=values) == []
    [plan] = harness.look(drift_kl=3.0, drift_values=rng.normal(20, 5, 5))
    assert (plan.decision.kind, plan.decision.model) == (ActionKind.SWITCH_MODEL, "linear")


def test_a_chance_low_score_there_does_not_keep_a_model_that_reads_the_condition_better() -> None:
    """linear once scored 0.78 on a dark window, below min_score (0.8) by the chance of a
    window: still far above what svm reads dark at (0.6, its stress test), so dark inputs
    move to linear. Had linear scored no better than svm's promise there, they would not
    (vision-30015: a dark window of 25 images scored 0.82 on the small CNN, and the next
    dark stretch ran 11 images on the medium one, which reads it at 0.17)."""
    rng = np.random.default_rng(12)
    for seen, switches in ((0.78, True), (0.55, False)):
        harness = Harness(HarmoniaStrategy(min_score=0.8, lookahead=5), active="linear")
        stress_tested(harness)
        harness.window(
            quality=seen, energy_j=0.0002, drift_kl=3.0, drift_values=rng.normal(20, 5, 100)
        )
        harness.knowledge.activate("svm")
        plans = harness.look(drift_kl=3.0, drift_values=rng.normal(20, 5, 5))
        assert [(p.decision.kind, p.decision.model) for p in plans] == (
            [(ActionKind.SWITCH_MODEL, "linear")] if switches else []
        ), seen
