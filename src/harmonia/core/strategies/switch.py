"""`switch`: on a violated quality boundary, switch to the model with the best known score."""

from __future__ import annotations

import math
from typing import ClassVar

from harmonia.core.actions import ActionKind
from harmonia.core.policy import Tactic
from harmonia.core.strategies.base import (
    Planned,
    Situation,
    Trigger,
    periodic_retrain,
    planned,
    reuse_or_retrain,
)


class SwitchStrategy:
    """Reacts to boundaries literally, with no memory beyond what the knowledge holds.

    ``switch_model``: the other model with the best score seen in its last window; a model
    never tried yet comes first in the policy's order, so every model gets tried once.
    ``retrain``/``reuse_or_retrain``: retrain, or reuse an archived version when one fits.
    ``retrain_every`` adds periodic retraining (the ``switch+retrain`` baseline).
    """

    name: ClassVar[str] = "switch"
    detectors: ClassVar[tuple[str, ...]] = ("kl",)

    def __init__(self, retrain_every: int | None = None, reuse_threshold: float = 0.75) -> None:
        if retrain_every is not None and retrain_every < 1:
            raise ValueError(f"retrain_every must be >= 1 window, got {retrain_every}")
        self.retrain_every = retrain_every
        self.reuse_threshold = reuse_threshold

    def decide(self, situation: Situation) -> list[Planned]:
        decisions: list[Planned] = []
        model = situation.active_model
        switches = situation.violated(Tactic.SWITCH_MODEL)
        if switches:
            decisions.append(self._switch(situation, Trigger.of(switches[0])))
            model = decisions[-1].decision.model or model
        if retrains := situation.violated(Tactic.RETRAIN):
            trigger = Trigger.of(retrains[0])
            decisions.append(
                planned(ActionKind.RETRAIN, f"{trigger.rule} asks to retrain", trigger, model=model)
            )
        elif reuses := situation.violated(Tactic.REUSE_OR_RETRAIN, Tactic.REUSE_VERSION):
            decisions.append(
                reuse_or_retrain(
                    situation, model, Trigger.of(reuses[0]), threshold=self.reuse_threshold
                )
            )
        else:
            decisions.extend(periodic_retrain(situation, self.retrain_every, model))
        return decisions

    def _switch(self, situation: Situation, trigger: Trigger) -> Planned:
        active = situation.active_model
        others = [m for m in situation.policy.models if m != active]
        if not others:
            return planned(ActionKind.NONE, "no other model to switch to", trigger)
        profiles = situation.knowledge.profiles
        untried = [m for m in others if math.isnan(profiles[m].score)]
        if untried:
            choice = untried[0]
            reason = f"switch to {choice}: no score known for it yet"
        else:
            choice = max(others, key=lambda m: profiles[m].score)
            reason = f"switch to {choice}: best known score {profiles[choice].score:.4f}"
        return planned(ActionKind.SWITCH_MODEL, reason, trigger, model=choice)
