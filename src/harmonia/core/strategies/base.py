"""The `Strategy` protocol and what every strategy reads: the `Situation` of one decision.

A strategy is the Plan of MAPE-K. Like a scikit-learn estimator its constructor only stores
parameters, and what it learns while running (EMA scores, budgets) lives in attributes that
end in ``_``. It never sleeps, reads files or opens sockets: randomness comes from the
engine's seeded RNG, time from ``situation.now``.
"""

from __future__ import annotations

import inspect
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from harmonia.core.actions import ActionKind, Decision
from harmonia.core.conditions import Evaluation
from harmonia.core.drift import DriftDetector
from harmonia.core.knowledge import Knowledge
from harmonia.core.monitor import WindowSummary
from harmonia.core.numbers import is_number
from harmonia.core.policy import Boundary, Policy, Tactic
from harmonia.core.versions import ModelVersion


@dataclass(frozen=True)
class Violation:
    """A boundary that held over the window just closed, with the values it read."""

    boundary: Boundary
    evaluation: Evaluation

    @property
    def tactic(self) -> Tactic:
        return self.boundary.then


@dataclass(frozen=True)
class Trigger:
    """Why a decision was taken: the rule that fired and the values it saw."""

    rule: str
    values: dict[str, float]

    @classmethod
    def of(cls, violation: Violation) -> Trigger:
        return cls(violation.boundary.label, dict(violation.evaluation.values))


@dataclass(frozen=True)
class Planned:
    """A strategy's decision with its trigger, before the engine stamps it into an `Action`."""

    decision: Decision
    trigger: Trigger


@dataclass(frozen=True)
class Situation:
    """Everything a strategy may read for one decision; it must not mutate ``knowledge``."""

    now: float
    policy: Policy
    summary: WindowSummary
    violations: tuple[Violation, ...]
    knowledge: Knowledge
    rng: random.Random
    detector_factories: dict[str, Callable[[], DriftDetector]]

    @property
    def active_model(self) -> str:
        return self.knowledge.active_model

    def violated(self, *tactics: Tactic) -> list[Violation]:
        return [v for v in self.violations if v.tactic in tactics]

    def divergence(self, detector: str, version: ModelVersion) -> float:
        """How far this window's data is from what ``version`` was trained on (NaN if unknown)."""
        return self.distance(detector, version.fingerprint)

    def distance(self, detector: str, sketch: tuple[float, ...]) -> float:
        """How far this window's data is from data with the quantile sketch ``sketch``
        (`harmonia.core.knowledge.fingerprint`), by ``detector``; NaN if either is empty."""
        factory = self.detector_factories.get(detector)
        if factory is None:
            raise LookupError(f"no {detector!r} drift detector is configured for this engine")
        if not sketch or self.summary.drift_values.size == 0:
            return math.nan
        fitted = factory().fit(np.asarray(sketch))
        return fitted.score(self.summary.drift_values).statistic

    def version_metric(self, model: str, name: str) -> float:
        """A metric stored with the current version of ``model``, else with the latest
        version that recorded it (NaN if none did)."""
        knowledge = self.knowledge
        current = knowledge.version_info(model, knowledge.current_versions.get(model))
        versions = [current] if current is not None else []
        versions += reversed(knowledge.versions.get(model, []))
        for info in versions:
            value = info.metadata.get(name)
            if is_number(value):
                return float(value)
        return math.nan


@runtime_checkable
class Strategy(Protocol):
    """Decides what to do after each window. Register one under ``harmonia.strategies``.

    A strategy may also choose the model to serve before any window closes, with
    ``first_model(policy, knowledge) -> str``; the engine's `~harmonia.core.engine.Engine.begin`
    asks it, live and in replay. With ``lookahead`` (a number of samples, or None) and
    ``anticipate(situation) -> list[Planned]``, it may act between windows on the latest
    inputs alone, before their labels count (`~harmonia.core.engine.Engine.step`). One that
    reads the stress test stored with versions (`harmonia.core.strategies.stress`) says so
    with ``reads_stress_test = True``; a replay measures new versions under it only then.
    """

    name: ClassVar[str]

    @property
    def detectors(self) -> tuple[str, ...]:
        """Drift detectors the strategy reads beyond those the policy names."""
        ...

    def decide(self, situation: Situation) -> list[Planned]: ...


def get_params(strategy: object) -> dict[str, Any]:
    """The constructor parameters of a strategy with their current values (sklearn's idiom)."""
    signature = inspect.signature(type(strategy).__init__)
    return {
        name: getattr(strategy, name)
        for name, parameter in signature.parameters.items()
        if name != "self" and parameter.kind is not inspect.Parameter.VAR_KEYWORD
    }


def planned(kind: ActionKind, reason: str, trigger: Trigger, **target: Any) -> Planned:
    """Shorthand used by every strategy to build a decision with its trigger."""
    return Planned(Decision(kind=kind, reason=reason, **target), trigger)


def by_distance(
    situation: Situation, versions: list[ModelVersion], detector: str
) -> list[tuple[float, ModelVersion]]:
    """``versions`` with how far this window's data is from what each was trained on,
    nearest first; those whose distance is unknown (no fingerprint) are left out."""
    ranked = [(situation.divergence(detector, version), version) for version in versions]
    return sorted(((d, v) for d, v in ranked if not math.isnan(d)), key=lambda pair: pair[0])


def reuse_or_retrain(
    situation: Situation,
    model: str,
    trigger: Trigger,
    *,
    detector: str = "kl",
    threshold: float = 0.75,
) -> Planned:
    """Bring back the archived version of ``model`` whose training data is closest to today's,
    if its divergence is below ``threshold``; otherwise retrain ``model`` on recent data.
    """
    ranked = by_distance(situation, situation.knowledge.archived_versions(model), detector)
    best = ranked[0] if ranked else None
    if best is not None and best[0] < threshold:
        distance, version = best
        return planned(
            ActionKind.REUSE_VERSION,
            f"{model} v{version.version} was trained on data closest to the current window "
            f"({detector} {distance:.3f} < {threshold})",
            Trigger(trigger.rule, {**trigger.values, f"{detector}_to_version": distance}),
            model=model,
            version=version.version,
        )
    why = (
        f"closest archived version is at {detector} {best[0]:.3f} >= {threshold}"
        if best is not None
        else "no archived version to reuse"
    )
    return planned(ActionKind.RETRAIN, f"retrain {model}: {why}", trigger, model=model)


def periodic_retrain(situation: Situation, every: int | None, model: str) -> list[Planned]:
    """A retrain every ``every`` windows (the baselines' periodic retraining)."""
    closed = situation.knowledge.windows_closed
    if every is None or closed == 0 or closed % every:
        return []
    trigger = Trigger(f"every {every} windows", {"windows": float(closed)})
    return [planned(ActionKind.RETRAIN, f"periodic retraining of {model}", trigger, model=model)]
