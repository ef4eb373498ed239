"""The conformance checks of a strategy (entry-point group ``harmonia.strategies``)."""

from __future__ import annotations

import inspect
import random
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from harmonia.core.actions import Action, ActionKind
from harmonia.core.engine import Engine
from harmonia.core.knowledge import Knowledge, fingerprint
from harmonia.core.policy import Policy, parse_policy
from harmonia.core.strategies.base import Strategy, get_params
from harmonia.core.telemetry import TelemetrySample
from harmonia.core.versions import ModelVersion
from harmonia.plugins import DRIFT_DETECTORS, STRATEGIES, load_plugin
from harmonia.testing._check import Check, check_registered, plugin_label, run_all

MODELS = ["linear", "svm", "lstm"]
BOUNDARIES = [
    {"when": "quality < 0.8", "then": "switch_model"},
    {"when": "drift.kl > 0.75", "then": "reuse_or_retrain"},
]
StrategyFactory = Callable[[], Strategy]


def _policy(name: str, **fields: Any) -> Policy:
    data: dict[str, Any] = {
        "policy": "conformance",
        "system": "traffic",
        "models": MODELS,
        "window": 100,
        "strategy": name,
        "boundaries": BOUNDARIES,
    }
    data.update(fields)
    return parse_policy(data)


def _engine(factory: StrategyFactory, policy: Policy, seed: int) -> Engine:
    """As `harmonia.policies.build_engine` builds one, with this strategy whatever its name."""
    strategy = factory()
    names = dict.fromkeys([*policy.drift_detectors(), *strategy.detectors])
    detectors = {
        name: partial(load_plugin(DRIFT_DETECTORS, name), **policy.drift.detectors.get(name, {}))
        for name in names
    }
    return Engine(policy, strategy, detectors, seed=seed)


def _window(
    model: str, *, r2: float, energy_j: float, start: float, seed: int, level: float = 100.0
) -> list[TelemetrySample]:
    """100 samples whose predictions reach about ``r2`` on targets around ``level``."""
    rng = random.Random(seed)
    targets = [rng.gauss(level, 20.0) for _ in range(100)]
    noise = 20.0 * max(0.0, 1.0 - r2) ** 0.5
    return [
        TelemetrySample(
            app="traffic",
            model=model,
            ts=start + i,
            latency_ms=2.0,
            energy_j=energy_j,
            energy_source="estimate",
            prediction=t + rng.gauss(0.0, noise),
            target=t,
            drift_value=t,
        )
        for i, t in enumerate(targets)
    ]


def _reference() -> np.ndarray:
    """What version 1 of every model was trained on."""
    return np.random.default_rng(0).normal(100.0, 20.0, 2000)


def _run(
    factory: StrategyFactory,
    name: str,
    *,
    seed: int = 0,
    windows: int = 24,
    strategy: Strategy | None = None,
) -> list[tuple[str, int | None, Action]]:
    """Drive the strategy (``strategy``, else a new one) through an engine over a stream with
    a quality drop and a shift, a step per sample; apply each action as a managed system
    would."""
    policy = _policy(name)
    engine = _engine(factory, policy, seed)
    if strategy is not None:
        engine.strategy = strategy
    knowledge = engine.new_knowledge()
    for model in policy.models:
        knowledge.add_version(ModelVersion(model, 1, fingerprint=fingerprint(_reference())))
    knowledge.activate(policy.start_model, 1)
    actions: list[tuple[str, int | None, Action]] = []
    for i in range(windows):
        shifted = i >= windows // 2
        samples = _window(
            knowledge.active_model,
            r2=0.6 if shifted else 0.95,
            level=170.0 if shifted else 100.0,
            energy_j=0.001 if knowledge.active_model == "linear" else 0.02,
            start=100.0 * i,
            seed=i,
        )
        for sample in samples:  # served by whatever serves now: actions apply at once
            knowledge.observe(sample.model_copy(update={"model": knowledge.active_model}))
            actions += _apply(knowledge, engine.step(knowledge, sample.ts), samples)
    return actions


def _apply(
    knowledge: Knowledge, decided: list[Action], samples: list[TelemetrySample]
) -> list[tuple[str, int | None, Action]]:
    """Each action with the model and version in service when it was decided, applied."""
    actions: list[tuple[str, int | None, Action]] = []
    for action in decided:
        actions.append((knowledge.active_model, knowledge.active_version, action))
        if action.kind is ActionKind.SWITCH_MODEL:
            assert action.model is not None, "switch_model without a model"
            knowledge.activate(action.model)
        elif action.kind is ActionKind.REUSE_VERSION:
            assert action.model is not None, "reuse_version without a model"
            knowledge.activate(action.model, action.version)
        elif action.kind is ActionKind.RETRAIN:
            assert action.model is not None, "retrain without a model"
            new = len(knowledge.versions[action.model]) + 1
            targets = [s.target for s in samples if s.target is not None]
            knowledge.add_version(ModelVersion(action.model, new, fingerprint=fingerprint(targets)))
            knowledge.activate(action.model, new)
    return actions


# -- the checks --------------------------------------------------------------------------------
def _registered_under_its_own_name(factory: StrategyFactory, name: str | None) -> None:
    check_registered(STRATEGIES, factory, name)
    instance = factory()
    assert isinstance(instance, Strategy), "an instance does not satisfy the Strategy protocol"


def _constructor_only_stores_parameters(factory: StrategyFactory, name: str | None) -> None:
    strategy = factory()
    signature = inspect.signature(factory)  # a class's: its constructor's, without self
    defaults = {p.name: p.default for p in signature.parameters.values()}
    params = get_params(strategy)
    assert params == defaults, f"parameters stored {params} differ from the defaults {defaults}"
    learned = [a for a in vars(strategy) if a.endswith("_")]
    assert not learned, f"learned state {learned} before any decision"


def _actions_are_valid_and_explained(factory: StrategyFactory, name: str) -> None:
    _assert_valid(_run(factory, name), name)


def _looks_ahead_as_declared(factory: StrategyFactory, name: str) -> None:
    """A ``lookahead`` is a positive number of samples, comes with ``anticipate``, and what
    a look decides is as valid and explained as what a window decides."""
    strategy = factory()
    every = getattr(strategy, "lookahead", None)
    if every is None:
        return
    assert isinstance(every, int) and not isinstance(every, bool) and every >= 1, (
        f"lookahead {every!r} is not a positive number of samples"
    )
    assert callable(getattr(strategy, "anticipate", None)), "a lookahead without anticipate"
    _assert_valid(_run(factory, name, strategy=strategy), name)


def _assert_valid(run: list[tuple[str, int | None, Action]], name: str) -> None:
    models = set(MODELS)
    for active, active_version, action in run:
        assert action.strategy == name, f"action stamped {action.strategy!r}, not {name!r}"
        assert action.reason and action.trigger, f"unexplained action {action.explain()}"
        if action.kind is ActionKind.SWITCH_MODEL:
            assert action.model in models and action.model != active, (
                f"switch to {action.model!r} while {active!r} serves"
            )
        if action.kind is ActionKind.RETRAIN:
            assert action.model in models, f"retrain of unknown model {action.model!r}"
        if action.kind is ActionKind.REUSE_VERSION:
            assert action.model in models and action.version is not None, (
                f"reuse of {action.model!r} v{action.version}"
            )
            assert (action.model, action.version) != (active, active_version), (
                f"reuse of the version in service ({active} v{active_version})"
            )


def _deterministic_for_a_seed(factory: StrategyFactory, name: str) -> None:
    first = [a.explain() for *_, a in _run(factory, name, seed=5)]
    second = [a.explain() for *_, a in _run(factory, name, seed=5)]
    assert first == second, "two runs with the same seed decided differently"


def _healthy_system_is_left_alone(factory: StrategyFactory, name: str) -> None:
    policy = _policy(name, models=MODELS)
    engine = _engine(factory, policy, 0)
    knowledge = engine.new_knowledge()
    knowledge.add_version(
        ModelVersion(policy.start_model, 1, fingerprint=fingerprint(_reference()))
    )
    knowledge.activate(policy.start_model, 1)
    for i in range(10):
        knowledge.observe_many(
            _window(policy.start_model, r2=0.99, energy_j=0.001, start=100.0 * i, seed=i)
        )
        actions = engine.step(knowledge, 100.0 * (i + 1))
        assert actions == [], f"acted on a healthy system: {[a.explain() for a in actions]}"


def strategy_checks(strategy: str | StrategyFactory) -> list[Check]:
    """Every conformance check of one strategy, each a `Check` to call (or parametrise over).

    ``strategy``: a name registered under ``harmonia.strategies``, or the strategy's class (or
    a factory called with no arguments).
    """
    looked_up = strategy if isinstance(strategy, str) else None
    factory: StrategyFactory = (
        load_plugin(STRATEGIES, strategy) if isinstance(strategy, str) else strategy
    )
    name = looked_up or str(getattr(factory, "name", ""))
    label = plugin_label(strategy)
    by_name: list[tuple[Callable[..., None], str | None]] = [
        (_registered_under_its_own_name, looked_up),
        (_constructor_only_stores_parameters, looked_up),
        (_actions_are_valid_and_explained, name),
        (_looks_ahead_as_declared, name),
        (_deterministic_for_a_seed, name),
        (_healthy_system_is_left_alone, name),
    ]
    return [
        Check(label, check.__name__.lstrip("_"), partial(check, factory, arg))
        for check, arg in by_name
    ]


def check_strategy(strategy: str | StrategyFactory) -> None:
    """Run every conformance check on one strategy; the first failure raises an
    `AssertionError` naming the strategy and the check.

    ``strategy``: a name registered under ``harmonia.strategies``, or the strategy's class.
    """
    run_all(strategy_checks(strategy))
