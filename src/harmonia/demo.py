"""A synthetic managed system, to watch the engine decide before a real system is wired in.

Three models with fixed quality and energy per inference serve a stream whose distribution
shifts after a third and shifts back after two thirds; a model's quality drops on data
unlike its training data until it is retrained, or an archived version trained on similar
data comes back. The numbers are made up and say so:
this shows the loop's decisions and explanations, not any model's real cost.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from harmonia.core.actions import Action, ActionKind
from harmonia.core.engine import Engine
from harmonia.core.knowledge import Knowledge, VersionInfo, fingerprint
from harmonia.core.telemetry import TelemetrySample

#: model → (R² on data like its training data, energy per inference in joules)
PROFILES = {"linear": (0.80, 0.0004), "svm": (0.86, 0.004), "lstm": (0.95, 0.02)}
DRIFT_PENALTY = 0.35


@dataclass
class SyntheticSystem:
    """A fake service whose behaviour follows `PROFILES`, reacting to applied actions."""

    seed: int = 0
    active: str = "lstm"
    #: (model, version) → the regime (0 before the shift, 1 after) it was trained on
    trained_on: dict[tuple[str, int], int] = field(default_factory=dict)
    version: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        for model in PROFILES:
            self.trained_on[(model, 1)] = 0
            self.version[model] = 1

    def stream(self, samples: int) -> Iterator[TelemetrySample]:
        for i in range(samples):
            regime = regime_at(i, samples)
            level = 100.0 + 60.0 * regime
            target = self.rng.gauss(level, 20.0)
            base_r2, energy = PROFILES[self.active]
            mismatch = self.trained_on[(self.active, self.version[self.active])] != regime
            r2 = base_r2 - (DRIFT_PENALTY if mismatch else 0.0)
            noise = 20.0 * (1.0 - r2) ** 0.5
            yield TelemetrySample(
                app="synthetic",
                model=self.active,
                model_version=self.version[self.active],
                ts=float(i),
                latency_ms=1000.0 * energy / 5.0,
                energy_j=energy * self.rng.uniform(0.9, 1.1),
                energy_source="estimate",
                prediction=target + self.rng.gauss(0.0, noise),
                target=target,
                drift_value=target,
            )

    def apply(self, action: Action, knowledge: Knowledge, recent: list[tuple[float, int]]) -> None:
        """Carry out an action as a real effector would, and tell the knowledge.

        ``recent`` holds the latest (target, regime) pairs: a retrained version fits the
        regime most of its training data came from.
        """
        if action.kind is ActionKind.SWITCH_MODEL and action.model:
            self.active = action.model
        elif action.kind is ActionKind.RETRAIN and action.model:
            self.version[action.model] += 1
            new = self.version[action.model]
            regimes = [regime for _, regime in recent]
            self.trained_on[(action.model, new)] = max(set(regimes), key=regimes.count)
            values = [target for target, _ in recent]
            knowledge.add_version(VersionInfo(action.model, new, fingerprint(values)))
            self.active = action.model
        elif action.kind is ActionKind.REUSE_VERSION and action.model and action.version:
            self.version[action.model] = action.version
            self.active = action.model
        knowledge.activate(self.active, self.version[self.active])


def regime_at(index: int, samples: int) -> int:
    """0 on the first and last third of the stream, 1 (shifted) in the middle third."""
    return int(samples // 3 <= index < 2 * samples // 3)


def run_synthetic(engine: Engine, samples: int = 4000, seed: int = 0) -> list[Action]:
    """Drive ``engine`` over a synthetic stream in event time; return every action."""
    system = SyntheticSystem(seed=seed, active=engine.policy.start_model)
    knowledge = Knowledge(engine.policy.models, system.active, 1)
    rng = random.Random(seed + 1)
    training = [rng.gauss(100.0, 20.0) for _ in range(2000)]
    for model in engine.policy.models:
        knowledge.add_version(VersionInfo(model, 1, fingerprint(training)))
    actions: list[Action] = []
    recent: list[tuple[float, int]] = []
    for index, sample in enumerate(system.stream(samples)):
        knowledge.observe(sample)  # the stream is lazy, so it follows applied actions
        recent = [*recent[-399:], (sample.target or 0.0, regime_at(index, samples))]
        for action in engine.step(knowledge, sample.ts):
            actions.append(action)
            system.apply(action, knowledge, recent)
    return actions
