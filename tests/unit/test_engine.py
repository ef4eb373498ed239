"""The MAPE-K engine: cadence, monitor signals, boundaries, explanations, cooldown, drift."""

from __future__ import annotations

import math
from collections import deque
from typing import ClassVar

import numpy as np
import pytest

from harmonia.core.actions import ActionKind
from harmonia.core.engine import Engine
from harmonia.core.knowledge import Knowledge, fingerprint
from harmonia.core.monitor import aggregate, regression_quality, summarize
from harmonia.core.strategies.base import Planned, Situation, Trigger, planned
from harmonia.core.strategies.single import SingleStrategy
from harmonia.core.telemetry import TelemetrySample
from harmonia.core.versions import ModelVersion
from harmonia.drift import KLDivergenceDetector
from harmonia.policies import build_engine
from support import policy, window


class AlwaysSwitch:
    """A strategy that wants to switch after every window: cooldown must hold it back."""

    name: ClassVar[str] = "always-switch"
    detectors: ClassVar[tuple[str, ...]] = ()

    def decide(self, situation: Situation) -> list[Planned]:
        other = next(m for m in situation.policy.models if m != situation.active_model)
        return [planned(ActionKind.SWITCH_MODEL, "restless", Trigger("always", {}), model=other)]


def run_windows(engine: Engine, knowledge: Knowledge, count: int, **kwargs: object) -> list:
    """Feed ``count`` windows, applying switches as an effector would; return actions per window."""
    per_window = []
    size = engine.policy.window.samples or 10
    for i in range(count):
        samples = window(knowledge.active_model, n=size, start=i * size, seed=i, **kwargs)  # type: ignore[arg-type]
        knowledge.observe_many(samples)
        actions = engine.step(knowledge, samples[-1].ts)
        for action in actions:
            if action.kind is ActionKind.SWITCH_MODEL and action.model:
                knowledge.activate(action.model)
        per_window.append(actions)
    return per_window


class LooksAhead:
    """Switches to ``svm`` as soon as the latest five inputs lie above 500, labels or not."""

    name: ClassVar[str] = "looks-ahead"
    detectors: ClassVar[tuple[str, ...]] = ()
    lookahead = 5

    def __init__(self) -> None:
        self.looked: list[int] = []

    def decide(self, situation: Situation) -> list[Planned]:
        return []

    def anticipate(self, situation: Situation) -> list[Planned]:
        self.looked.append(situation.summary.count)
        if situation.active_model == "svm" or situation.summary.drift_values.min() < 500:
            return []
        return [planned(ActionKind.SWITCH_MODEL, "bright", Trigger("ahead", {}), model="svm")]


def shifted(samples: list[TelemetrySample], by: float) -> list[TelemetrySample]:
    return [s.model_copy(update={"drift_value": (s.drift_value or 0) + by}) for s in samples]


def test_a_strategy_that_looks_ahead_acts_between_windows_and_closes_the_window_there() -> None:
    strategy = LooksAhead()
    engine = Engine(policy(window=50), strategy)
    knowledge = engine.new_knowledge()
    calm = window("linear", n=22)
    bright = shifted(window("linear", n=10, start=22), 1000)
    acted = []
    for sample in [*calm, *bright]:
        knowledge.observe(sample.model_copy(update={"model": knowledge.active_model}))
        for action in engine.step(knowledge, sample.ts):
            knowledge.activate(action.model or "")  # applied at once, as the replay does
            acted.append(action)
    # asked at 5, 10, ... inputs; at 30 the latest five are all shifted
    assert strategy.looked == [5] * 6
    [action] = acted
    assert (action.kind, action.model, action.trigger) == (ActionKind.SWITCH_MODEL, "svm", "ahead")
    # the window closed there with 30 samples; the next one is svm's alone
    assert knowledge.windows_closed == 1 and knowledge.summaries[-1].count == 30
    assert knowledge.summaries[-1].model == "linear"
    assert [s.ts for s in knowledge.window] == [30.0, 31.0]
    assert {s.model for s in knowledge.window} == {"svm"}


def test_looking_ahead_closes_nothing_where_the_cooldown_holds_the_action() -> None:
    strategy = LooksAhead()
    engine = Engine(policy(window=50, cooldown=3), strategy)
    knowledge = engine.new_knowledge()
    knowledge.last_action_window, knowledge.windows_closed = 0, 1
    for sample in shifted(window("linear", n=20), 1000):
        knowledge.observe(sample)
        assert engine.step(knowledge, sample.ts) == []
    assert knowledge.windows_closed == 1 and len(knowledge.window) == 20
    assert knowledge.actions == deque()


def test_no_decision_before_the_window_is_full() -> None:
    engine = Engine(policy(window=50), SingleStrategy())
    knowledge = engine.new_knowledge()
    knowledge.observe_many(window("linear", n=49))
    assert engine.step(knowledge, 49.0) == []
    assert knowledge.windows_closed == 0
    knowledge.observe_many(window("linear", n=2, start=49))
    engine.step(knowledge, 51.0)
    assert knowledge.windows_closed == 1
    assert len(knowledge.window) == 1  # the sample after the window stays for the next one


def test_duration_windows_follow_the_injected_clock() -> None:
    engine = Engine(policy(window="10 s"), SingleStrategy())
    knowledge = engine.new_knowledge()
    knowledge.observe_many(window("linear", n=5, start=100.0))
    assert engine.step(knowledge, 109.9) == []
    assert knowledge.windows_closed == 0
    engine.step(knowledge, 110.0)
    assert knowledge.windows_closed == 1
    assert knowledge.summaries[-1].count == 5


def test_a_violated_boundary_becomes_an_explained_action() -> None:
    engine = build_engine(
        policy(
            strategy="switch",
            boundaries=[{"when": "p95(latency_ms) > 50", "then": "switch_model"}],
        )
    )
    knowledge = engine.new_knowledge()
    knowledge.observe_many(window("linear", latency_ms=80.0))
    [action] = engine.step(knowledge, 50.0)
    assert action.kind is ActionKind.SWITCH_MODEL
    assert action.model == "svm"
    assert action.trigger == "p95(latency_ms) > 50"
    assert action.values == {"p95(latency_ms)": 80.0}
    assert action.strategy == "switch"
    assert "no score known" in action.reason
    assert action.context["model"] == "linear"
    assert "p95(latency_ms) > 50" in action.explain()


def test_healthy_windows_produce_no_action() -> None:
    engine = build_engine(
        policy(strategy="switch", boundaries=[{"when": "quality < 0.5", "then": "switch_model"}])
    )
    knowledge = engine.new_knowledge()
    assert run_windows(engine, knowledge, 5, r2=0.95) == [[]] * 5


@pytest.mark.parametrize(
    ("cooldown", "acting"), [(0, list(range(9))), (2, [0, 3, 6]), (3, [0, 4, 8])]
)
def test_cooldown_holds_actions_back(cooldown: int, acting: list[int]) -> None:
    engine = Engine(policy(cooldown=cooldown), AlwaysSwitch())
    per_window = run_windows(engine, engine.new_knowledge(), 9)
    taken = [
        i for i, actions in enumerate(per_window) if actions[0].kind is ActionKind.SWITCH_MODEL
    ]
    assert taken == acting
    held = [a for actions in per_window for a in actions if a.kind is ActionKind.NONE]
    assert all("held by cooldown" in a.reason and "wanted switch_model" in a.reason for a in held)


def test_cooldown_in_seconds() -> None:
    engine = Engine(policy(cooldown="120 s"), AlwaysSwitch())
    per_window = run_windows(engine, engine.new_knowledge(), 6)  # 50 s per window
    taken = [
        i for i, actions in enumerate(per_window) if actions[0].kind is ActionKind.SWITCH_MODEL
    ]
    assert taken == [0, 3]


def test_drift_is_measured_against_the_training_data_of_the_version_in_service() -> None:
    engine = build_engine(
        policy(strategy="single", boundaries=[{"when": "drift.kl > 0.75", "then": "retrain"}])
    )
    knowledge = engine.new_knowledge()
    training = np.random.default_rng(0).normal(100.0, 20.0, 2000)
    knowledge.add_version(ModelVersion("linear", 1, fingerprint=fingerprint(training)))
    knowledge.activate("linear", 1)
    knowledge.observe_many(window("linear", level=100.0))
    engine.step(knowledge, 50.0)
    assert knowledge.summaries[-1].signals["drift.kl"] < 0.75
    knowledge.observe_many(window("linear", level=180.0, start=50.0))
    engine.step(knowledge, 100.0)
    assert knowledge.summaries[-1].signals["drift.kl"] > 0.75


def test_drift_against_the_previous_window() -> None:
    engine = build_engine(
        policy(
            strategy="single",
            window=200,
            drift={"reference": "previous_window", "detectors": {"kl": {"bins": 10}}},
        )
    )
    knowledge = engine.new_knowledge()
    for i, level in enumerate([100.0, 100.0, 180.0, 180.0]):
        knowledge.observe_many(window("linear", n=200, level=level, start=200.0 * i, seed=i))
        engine.step(knowledge, 200.0 * (i + 1))
    drift = [s.signals.get("drift.kl", math.nan) for s in knowledge.summaries]
    assert math.isnan(drift[0])  # nothing to compare the first window with
    assert drift[1] < 0.75 < drift[2]
    assert drift[3] < 0.75  # the new level is now the reference


def test_without_a_known_reference_the_first_window_becomes_it() -> None:
    engine = build_engine(
        policy(strategy="single", window=200, drift={"detectors": {"kl": {"bins": 10}}})
    )
    knowledge = engine.new_knowledge()
    for i, level in enumerate([100.0, 100.0, 180.0]):
        knowledge.observe_many(window("linear", n=200, level=level, start=200.0 * i, seed=i))
        engine.step(knowledge, 200.0 * (i + 1))
    drift = [s.signals.get("drift.kl", math.nan) for s in knowledge.summaries]
    assert math.isnan(drift[0]) and drift[1] < 0.75 < drift[2]


def test_engine_refuses_to_run_without_the_detectors_the_policy_reads() -> None:
    with pytest.raises(ValueError, match="drift detectors kl"):
        Engine(policy(boundaries=[{"when": "drift.kl > 1", "then": "retrain"}]), SingleStrategy())


def test_same_seed_same_decisions() -> None:
    def actions(seed: int) -> list[str]:
        engine = build_engine(policy(options={"alpha": 0.5, "min_score": 0.99}), seed=seed)
        return [a.explain() for per in run_windows(engine, engine.new_knowledge(), 12) for a in per]

    assert actions(7) == actions(7)
    assert actions(7) != actions(8)


# -- the monitor's arithmetic ------------------------------------------------------------
def test_regression_quality_by_hand() -> None:
    samples = [
        TelemetrySample(app="a", model="m", ts=i, prediction=p, target=t)
        for i, (p, t) in enumerate([(1.0, 1.0), (2.0, 3.0), (3.0, 5.0)])
    ]
    r2, mae = regression_quality(samples)
    # SS_res = 0 + 1 + 4 = 5; SS_tot = 4 + 0 + 4 = 8
    assert r2 == pytest.approx(1 - 5 / 8)
    assert mae == pytest.approx(1.0)


def test_aggregates_by_hand() -> None:
    values = np.array([0.0, 1.0, 2.0, 3.0, 0.0])
    assert aggregate(values, "mean") == pytest.approx(1.2)
    assert aggregate(values, "max") == 3.0
    assert aggregate(values, "min") == 0.0
    assert aggregate(values, "rate") == pytest.approx(0.6)
    assert aggregate(values, "p50") == 1.0
    assert math.isnan(aggregate(np.array([]), "p95"))
    assert aggregate(values, "sum") == 6.0
    assert aggregate(values, "count") == 5.0 and aggregate(np.array([]), "count") == 0.0
    assert aggregate(values, "percentile", 25.0) == float(np.percentile(values, 25))


def test_summary_signals() -> None:
    samples = window("lstm", n=100, r2=0.9, energy_j=0.0125, latency_ms=3.0, metrics={"error": 1.0})
    p = policy(boundaries=[{"when": "rate(error) > 0.5", "then": "switch_model"}])
    summary = summarize(samples, p, model="lstm", version=None)
    signals = summary.signals
    assert signals["energy_norm"] == pytest.approx(0.5)
    assert signals["score"] == pytest.approx(0.95 * signals["r2"] + 0.05 * 0.5)
    assert signals["p95(latency_ms)"] == 3.0
    assert signals["rate(error)"] == 1.0
    assert 0.8 < signals["r2"] < 0.95


def test_a_policy_reads_consumer_defined_metrics_over_labels() -> None:
    samples = window("lstm", n=100, latency_ms=3.0, metrics={"error": 0.0})
    slow = [s.model_copy(update={"instance": "b", "latency_ms": 90.0}) for s in samples[:20]]
    failing = [s.model_copy(update={"metrics": {"error": 1.0}}) for s in samples[20:30]]
    samples = slow + failing + samples[30:]
    when = [
        'p99(latency_ms{instance="b"}) > 50',
        "ratio(sum(error), count()) > 0.05",
        'count({instance!="b"}) < 81',
        "percentile(latency_ms, 50) > 2",
    ]
    p = policy(boundaries=[{"when": w, "then": "switch_model"} for w in when])
    signals = summarize(samples, p, model="lstm", version=None).signals
    assert signals['p99(latency_ms{instance="b"})'] == 90.0
    assert signals["ratio(sum(error), count())"] == pytest.approx(0.1)
    assert signals['count({instance!="b"})'] == 80.0
    assert signals["percentile(latency_ms, 50)"] == 3.0


def test_a_policy_reads_the_observers_latest_results() -> None:
    engine = build_engine(
        policy(
            strategy="switch",
            boundaries=[{"when": "observer.lat.fraction > 0.1", "then": "switch_model"}],
        )
    )
    knowledge = engine.new_knowledge()
    knowledge.observe_many(window("linear"))
    assert engine.step(knowledge, 50.0) == []  # no result yet: no data, no violation
    knowledge.note_observation("lat", {"fraction": 0.3, "flagged": None})
    knowledge.observe_many(window("linear", start=50))
    [action] = engine.step(knowledge, 100.0)
    assert action.trigger == "observer.lat.fraction > 0.1"
    assert action.values == {"observer.lat.fraction": 0.3}
    assert math.isnan(knowledge.summaries[-1].signals["observer.lat.flagged"])


def test_summary_computes_drift_with_the_given_detector() -> None:
    samples = window("lstm", level=300.0)
    detector = KLDivergenceDetector().fit(np.random.default_rng(0).normal(100.0, 20.0, 1000))
    summary = summarize(samples, policy(), model="lstm", version=None, detectors={"kl": detector})
    assert summary.signals["drift.kl"] > 5
    assert summary.drift_details["kl"]["drifted"] is True


def test_a_summary_keeps_the_values_of_the_policys_input_features() -> None:
    """``drift.features``: each window keeps their values (samples lacking one skipped)."""
    samples = window("lstm", n=10, metrics={"sharpness": 0.5})
    samples[3] = samples[3].model_copy(update={"metrics": {}})
    p = policy(drift={"features": ["sharpness"]})
    summary = summarize(samples, p, model="lstm", version=None)
    assert summary.features["sharpness"].tolist() == [0.5] * 9
    assert summarize(samples, policy(), model="lstm", version=None).features == {}


def test_profiles_record_what_each_model_achieved() -> None:
    engine = Engine(policy(), SingleStrategy())
    knowledge = engine.new_knowledge()
    run_windows(engine, knowledge, 2, energy_j=0.01)
    profile = knowledge.profiles["linear"]
    assert profile.windows == 2
    assert profile.energy_j == pytest.approx(0.01)
    assert math.isnan(knowledge.profiles["svm"].score)


def test_a_trusted_sample_equals_a_validated_one() -> None:
    fields = {
        "app": "a",
        "stage": "main",
        "service": "s",
        "instance": "i",
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "model": "m",
        "model_version": 2,
        "ts": 1.0,
        "latency_ms": 0.5,
        "energy_j": 0.001,
        "energy_source": "estimate",
        "prediction": 1.0,
        "target": 2.0,
        "drift_value": 2.0,
        "metrics": {"confidence": 0.4},
        "input_summary": None,
    }
    trusted = TelemetrySample.trusted(dict(fields))
    assert trusted == TelemetrySample.model_validate(fields)
    assert trusted.model_dump() == fields
