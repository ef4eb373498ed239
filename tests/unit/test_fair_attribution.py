"""Fair attribution: a window that spans a switch is split at the switch, each part credited
to the model that served it, so a fresh model is not blamed for its predecessor's samples."""

from __future__ import annotations

from harmonia.core.actions import ActionKind
from harmonia.core.monitor import regression_quality, split_at_switches
from harmonia.policies import build_engine
from support import policy, window


def switch_policy() -> object:
    return policy(
        window=40,
        strategy="switch",
        cooldown="0 windows",
        boundaries=[{"when": "quality < 0.78", "then": "switch_model"}],
    )


def test_split_at_switches_keeps_consecutive_runs_of_one_model_and_version() -> None:
    samples = window("linear", n=3) + window("svm", n=2, start=3) + window("linear", n=1, start=5)
    parts = split_at_switches(samples)
    assert [(p[0].model, len(p)) for p in parts] == [("linear", 3), ("svm", 2), ("linear", 1)]
    assert split_at_switches([]) == []


def test_a_fresh_model_is_judged_on_its_own_samples_only() -> None:
    engine = build_engine(switch_policy())  # type: ignore[arg-type]
    knowledge = engine.new_knowledge()
    knowledge.activate("svm")
    # the switch to svm took effect late: linear served half of svm's first window, badly
    mixed = window("linear", n=20, r2=0.1, seed=1) + window("svm", n=20, r2=0.95, start=20, seed=2)
    assert regression_quality(mixed)[0] < 0.78  # judged whole, svm would be switched away
    knowledge.observe_many(mixed)
    actions = engine.step(knowledge, 39.0)
    assert all(a.kind is ActionKind.NONE for a in actions)  # svm is not blamed
    summary = knowledge.summaries[-1]
    assert summary.model == "svm" and summary.count == 20
    assert summary.signals["quality"] > 0.8
    assert knowledge.profiles["linear"].quality < 0.78  # linear is credited with its part
    assert knowledge.profiles["svm"].quality > 0.8


def test_no_decision_until_the_model_in_service_has_served() -> None:
    engine = build_engine(switch_policy())  # type: ignore[arg-type]
    knowledge = engine.new_knowledge()
    knowledge.activate("svm")
    knowledge.observe_many(window("linear", n=40, r2=0.1, seed=3))
    assert engine.step(knowledge, 39.0) == []
    assert knowledge.summaries[-1].model == "linear"  # recorded, credited to linear
    assert knowledge.profiles["linear"].quality < 0.5
