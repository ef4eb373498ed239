"""Harmonica's custom MAPE files (monitor.py, analyse.py, plan.py, execute.py) as one
Harmonia strategy: replace the bodies of `monitor`, `analyse` and `plan` with your logic.

Harmonia runs the loop for you: it monitors the telemetry in windows (`situation.summary`),
evaluates the policy's boundaries (`situation.violations`), calls `decide` after each
window, and executes what it returns (the action goes to the managed system's effector and
is recorded with its reason). The same class runs live and in `harmonia replay`.
"""

from __future__ import annotations

import math
from typing import ClassVar

from harmonia.core.actions import ActionKind
from harmonia.core.policy import Tactic
from harmonia.core.strategies.base import (
    Planned,
    Situation,
    Trigger,
    Violation,
    planned,
    reuse_or_retrain,
)


class CustomMapeStrategy:
    """Switch to the best-scored other model when a quality boundary is violated, once its
    margin is above ``min_gain``; on drift, reuse an archived version that fits or retrain.

    Like a scikit-learn estimator, the constructor only stores parameters; what is learned
    while running goes in attributes ending in ``_``.
    """

    name: ClassVar[str] = "custom_mape"
    detectors: ClassVar[tuple[str, ...]] = ("kl",)

    def __init__(self, min_gain: float = 0.0, reuse_threshold: float = 0.75) -> None:
        self.min_gain = min_gain
        self.reuse_threshold = reuse_threshold

    # -- monitor.py: what to look at ------------------------------------------------------
    def monitor(self, situation: Situation) -> dict[str, float]:
        """Each model's last known score (NaN: never tried)."""
        profiles = situation.knowledge.profiles
        return {model: profiles[model].score for model in situation.policy.models}

    # -- analyse.py: is something wrong? ---------------------------------------------------
    def analyse(self, situation: Situation) -> tuple[list[Violation], list[Violation]]:
        """The quality and the drift violations of the window just closed."""
        return (
            situation.violated(Tactic.SWITCH_MODEL),
            situation.violated(Tactic.REUSE_OR_RETRAIN, Tactic.RETRAIN, Tactic.REUSE_VERSION),
        )

    # -- plan.py: what to do ---------------------------------------------------------------
    def plan(self, situation: Situation, scores: dict[str, float], trigger: Trigger) -> Planned:
        active = situation.active_model
        others = [m for m in situation.policy.models if m != active]
        untried = [m for m in others if math.isnan(scores[m])]
        if untried:
            return planned(ActionKind.SWITCH_MODEL, f"try {untried[0]}", trigger, model=untried[0])
        if not others:
            return planned(ActionKind.NONE, "no other model", trigger)
        best = max(others, key=lambda m: scores[m])
        current = scores.get(active, math.nan)
        if not math.isnan(current) and scores[best] - current <= self.min_gain:
            return planned(ActionKind.NONE, f"{best} is not better by {self.min_gain}", trigger)
        return planned(
            ActionKind.SWITCH_MODEL,
            f"switch to {best}: score {scores[best]:.4f}",
            trigger,
            model=best,
        )

    # -- execute.py is Harmonia's: it delivers and records what `decide` returns -----------
    def decide(self, situation: Situation) -> list[Planned]:
        quality, drift = self.analyse(situation)
        decisions = []
        if quality:
            decisions.append(self.plan(situation, self.monitor(situation), Trigger.of(quality[0])))
        if drift:
            model = decisions[-1].decision.model if decisions else None
            decisions.append(
                reuse_or_retrain(
                    situation,
                    model or situation.active_model,
                    Trigger.of(drift[0]),
                    threshold=self.reuse_threshold,
                )
            )
        return decisions
