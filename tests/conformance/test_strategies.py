"""One conformance suite that every installed strategy passes (scikit-learn's idea).

Strategies are found through the ``harmonia.strategies`` entry points, so a plugin that a
user installs is held to the same contract as the built-in ones.
"""

from __future__ import annotations

import inspect

import pytest

from harmonia.core.actions import ActionKind
from harmonia.core.knowledge import VersionInfo, fingerprint
from harmonia.core.strategies.base import Strategy, get_params
from harmonia.plugins import STRATEGIES, load_plugin, plugin_names
from harmonia.policies import build_engine
from support import normal, policy, window

NAMES = plugin_names(STRATEGIES)
BOUNDARIES = [
    {"when": "quality < 0.8", "then": "switch_model"},
    {"when": "drift.kl > 0.75", "then": "reuse_or_retrain"},
]


def test_the_built_in_strategies_are_registered() -> None:
    assert {"single", "switch", "harmone", "harmonia"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_registered_under_its_own_name(name: str) -> None:
    cls = load_plugin(STRATEGIES, name)
    assert cls.name == name
    assert isinstance(cls(), Strategy)


@pytest.mark.parametrize("name", NAMES)
def test_constructor_only_stores_parameters(name: str) -> None:
    cls = load_plugin(STRATEGIES, name)
    strategy = cls()
    signature = inspect.signature(cls.__init__)
    defaults = {p.name: p.default for p in signature.parameters.values() if p.name != "self"}
    assert get_params(strategy) == defaults
    assert not [a for a in vars(strategy) if a.endswith("_")], "learned state before any decision"


def _run(name: str, *, seed: int = 0, windows: int = 24) -> list:
    """Drive the strategy through an engine over a stream with a quality drop and a shift."""
    p = policy(strategy=name, models=["linear", "svm", "lstm"], boundaries=BOUNDARIES, window=100)
    engine = build_engine(p, seed=seed)
    knowledge = engine.new_knowledge()
    for model in p.models:
        knowledge.add_version(VersionInfo(model, 1, fingerprint(normal(100.0, 2000, 0))))
    knowledge.activate(p.start_model, 1)
    actions = []
    for i in range(windows):
        shifted = i >= windows // 2
        samples = window(
            knowledge.active_model,
            n=100,
            r2=0.6 if shifted else 0.95,
            level=170.0 if shifted else 100.0,
            energy_j=0.001 if knowledge.active_model == "linear" else 0.02,
            start=100.0 * i,
            seed=i,
        )
        knowledge.observe_many(samples)
        for action in engine.step(knowledge, samples[-1].ts):
            actions.append((knowledge.active_model, knowledge.active_version, action))
            if action.kind is ActionKind.SWITCH_MODEL:
                knowledge.activate(action.model)
            elif action.kind is ActionKind.REUSE_VERSION:
                knowledge.activate(action.model, action.version)
            elif action.kind is ActionKind.RETRAIN:
                new = len(knowledge.versions[action.model]) + 1
                knowledge.add_version(
                    VersionInfo(action.model, new, fingerprint([s.target for s in samples]))
                )
                knowledge.activate(action.model, new)
    return actions


@pytest.mark.parametrize("name", NAMES)
def test_actions_are_valid_and_explained(name: str) -> None:
    models = {"linear", "svm", "lstm"}
    for active, active_version, action in _run(name):
        assert action.strategy == name
        assert action.reason and action.trigger
        if action.kind is ActionKind.SWITCH_MODEL:
            assert action.model in models and action.model != active
        if action.kind is ActionKind.RETRAIN:
            assert action.model in models
        if action.kind is ActionKind.REUSE_VERSION:
            assert action.model in models and action.version is not None
            assert (action.model, action.version) != (active, active_version)


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_for_a_seed(name: str) -> None:
    first = [a.explain() for *_, a in _run(name, seed=5)]
    assert first == [a.explain() for *_, a in _run(name, seed=5)]


@pytest.mark.parametrize("name", NAMES)
def test_healthy_system_is_left_alone(name: str) -> None:
    p = policy(strategy=name, boundaries=BOUNDARIES, window=100)
    engine = build_engine(p)
    knowledge = engine.new_knowledge()
    knowledge.add_version(VersionInfo(p.start_model, 1, fingerprint(normal(100.0, 2000, 0))))
    knowledge.activate(p.start_model, 1)
    for i in range(10):
        knowledge.observe_many(
            window(p.start_model, n=100, r2=0.99, energy_j=0.001, start=100.0 * i, seed=i)
        )
        assert engine.step(knowledge, 100.0 * (i + 1)) == []
