"""`harmone`: a faithful reimplementation of the published HarmonE approach.

Per decision window (HarmonE's MAPE cycle), for the model in service:

1. Score ``S = β·quality + (1−β)(1−E_norm)`` (the engine's monitor computes it from the
   policy's objective: β = 0.95, E range [0, 25 mJ] by default).
2. EMA per model, updated for the active model only: ``ema ← γ·S + (1−γ)·ema`` (γ = 0.8,
   every model starts at 0.5).
3. Adaptive energy budget: a violation when ``E_norm > T``; then
   ``T ← T + k·(max_energy − E_norm)`` (k = 0.95); an energy violation starts a 3-cycle
   recovery lock during which no switch happens.
4. Switch when ``ema < min_score`` (0.78), on an energy violation, or when a policy boundary
   with ``then: switch_model`` fires. With probability α = 0.1 the target is a random other
   model (ε-exploration from the engine's seeded RNG); after an energy violation a cheaper
   model (HarmonE used a fixed efficiency table; we use measured energy, and the policy's
   order, cheapest first, for models not measured yet); otherwise the one with the best EMA.
5. Drift: when the ``kl`` drift signal exceeds 0.75 (or a drift boundary fires), reuse the
   archived version whose training data is closest (KL below 0.75), else retrain.

Known defects of the published code, fixed here, each behind a visible option:

- *Histograms on different bin edges* (``np.histogram`` on each sample separately): the KL
  detector bins both samples on shared edges. Set ``drift.detectors.kl.shared_edges: false``
  in the policy to reproduce the original.
- *Unbounded budget wind-up*: ``T`` grows without limit while energy stays low (and sinks
  below zero after expensive windows), so the energy check stops meaning anything. Here
  ``budget_bounds`` clamps ``T`` (default [0, 1]); ``budget_bounds: null`` is the original.
- *Forced switch on every trigger*: the published planner always picks the best model *other*
  than the one in service, even when the one in service has the best EMA. With
  ``stay_if_best`` (default) it stays; ``stay_if_best: false`` is the original.

``HarmonEStrategy.published()`` builds the original behaviour with all three undone.
"""

from __future__ import annotations

import math
from typing import ClassVar

from harmonia.core.actions import ActionKind
from harmonia.core.knowledge import ModelProfile
from harmonia.core.policy import Tactic
from harmonia.core.strategies.base import Planned, Situation, Trigger, planned, reuse_or_retrain
from harmonia.core.units import format_mj


class HarmonEStrategy:
    """HarmonE's analysis and planning, with its defects fixed behind options.

    >>> strategy = HarmonEStrategy()
    >>> (strategy.gamma, strategy.min_score, strategy.k, strategy.alpha)
    (0.8, 0.78, 0.95, 0.1)
    """

    name: ClassVar[str] = "harmone"

    def __init__(
        self,
        gamma: float = 0.8,
        min_score: float = 0.78,
        k: float = 0.95,
        max_energy: float = 0.5,
        recovery_windows: int = 3,
        alpha: float = 0.1,
        drift_threshold: float = 0.75,
        reuse_threshold: float = 0.75,
        initial_score: float = 0.5,
        stay_if_best: bool = True,
        budget_bounds: tuple[float, float] | None = (0.0, 1.0),
        drift_detector: str = "kl",
    ) -> None:
        for label, value in (("gamma", gamma), ("alpha", alpha)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{label} must be in [0, 1], got {value}")
        if recovery_windows < 0:
            raise ValueError(f"recovery_windows must be >= 0, got {recovery_windows}")
        if budget_bounds is not None and budget_bounds[0] > budget_bounds[1]:
            raise ValueError(f"budget_bounds must be [low, high], got {budget_bounds}")
        self.gamma = gamma
        self.min_score = min_score
        self.k = k
        self.max_energy = max_energy
        self.recovery_windows = recovery_windows
        self.alpha = alpha
        self.drift_threshold = drift_threshold
        self.reuse_threshold = reuse_threshold
        self.initial_score = initial_score
        self.stay_if_best = stay_if_best
        self.budget_bounds = budget_bounds
        self.drift_detector = drift_detector

    @classmethod
    def published(cls) -> HarmonEStrategy:
        """The published behaviour: unbounded budget, forced switch (see the module notes)."""
        return cls(stay_if_best=False, budget_bounds=None)

    @property
    def detectors(self) -> tuple[str, ...]:
        return (self.drift_detector,)

    # -- learned state (created on first use, sklearn-style trailing underscore) -----------
    def _state(self, models: list[str]) -> None:
        if not hasattr(self, "ema_scores_"):
            self.ema_scores_ = dict.fromkeys(models, self.initial_score)
            self.budget_ = self.max_energy
            self.recovery_ = 0

    def decide(self, situation: Situation) -> list[Planned]:
        self._state(situation.policy.models)
        signals = situation.summary.signals
        active = situation.active_model
        window_score = signals.get("score", math.nan)
        if not math.isnan(window_score):
            previous = self.ema_scores_.get(active, self.initial_score)
            self.ema_scores_[active] = self.gamma * window_score + (1 - self.gamma) * previous
        energy_trigger = self._energy_budget(signals.get("energy_norm", math.nan))

        decisions: list[Planned] = []
        trigger = self._switch_trigger(situation, window_score, energy_trigger)
        if trigger is not None:
            decisions.append(self._choose(situation, trigger, energy=trigger is energy_trigger))
        switched_to = next(
            (p.decision.model for p in decisions if p.decision.kind is ActionKind.SWITCH_MODEL),
            None,
        )
        drift = self._drift_trigger(situation)
        if drift is not None:
            decisions.append(
                reuse_or_retrain(
                    situation,
                    switched_to or active,
                    drift,
                    detector=self.drift_detector,
                    threshold=self.reuse_threshold,
                )
            )
        return decisions

    def _energy_budget(self, energy_norm: float) -> Trigger | None:
        """Check ``E_norm`` against the budget, then move the budget (HarmonE's order)."""
        if math.isnan(energy_norm):
            return None
        budget = self.budget_
        violated = energy_norm > budget
        self.budget_ = budget + self.k * (self.max_energy - energy_norm)
        if self.budget_bounds is not None:
            low, high = self.budget_bounds
            self.budget_ = min(high, max(low, self.budget_))
        if not violated:
            return None
        return Trigger(
            "harmone: energy above budget", {"energy_norm": energy_norm, "budget": budget}
        )

    def _switch_trigger(
        self, situation: Situation, window_score: float, energy: Trigger | None
    ) -> Trigger | None:
        if self.recovery_ > 0:
            self.recovery_ -= 1
            return None
        ema = self.ema_scores_[situation.active_model]
        trigger: Trigger | None = None
        if not math.isnan(window_score) and ema < self.min_score:
            trigger = Trigger(
                "harmone: ema score below min_score",
                {"ema_score": ema, "score": window_score, "min_score": self.min_score},
            )
        if boundaries := situation.violated(Tactic.SWITCH_MODEL):
            trigger = trigger or Trigger.of(boundaries[0])
        if energy is not None:
            self.recovery_ = self.recovery_windows
            trigger = energy
        return trigger

    def _choose(self, situation: Situation, trigger: Trigger, *, energy: bool) -> Planned:
        active = situation.active_model
        models = situation.policy.models
        others = [m for m in models if m != active]
        if not others:
            return planned(ActionKind.NONE, "no other model to switch to", trigger)
        if situation.rng.random() < self.alpha:
            choice = situation.rng.choice(others)
            return planned(
                ActionKind.SWITCH_MODEL,
                f"exploration (α={self.alpha}): try {choice}",
                trigger,
                model=choice,
            )
        if energy:
            choice, reason = _cheaper_model(models, active, situation.knowledge.profiles)
        else:
            pool = models if self.stay_if_best else others
            choice = max(pool, key=lambda m: self.ema_scores_[m])
            reason = f"{choice} has the best EMA score ({self.ema_scores_[choice]:.4f})"
        if choice == active:
            return planned(ActionKind.NONE, f"stay on {active}: {reason}", trigger)
        return planned(ActionKind.SWITCH_MODEL, f"switch to {reason}", trigger, model=choice)

    def _drift_trigger(self, situation: Situation) -> Trigger | None:
        divergence = situation.summary.signals.get(f"drift.{self.drift_detector}", math.nan)
        if not math.isnan(divergence) and divergence > self.drift_threshold:
            return Trigger(
                f"harmone: drift.{self.drift_detector} above threshold",
                {f"drift.{self.drift_detector}": divergence, "threshold": self.drift_threshold},
            )
        boundaries = situation.violated(
            Tactic.REUSE_OR_RETRAIN, Tactic.RETRAIN, Tactic.REUSE_VERSION
        )
        return Trigger.of(boundaries[0]) if boundaries else None


def _cheaper_model(
    models: list[str], active: str, profiles: dict[str, ModelProfile]
) -> tuple[str, str]:
    """The model to fall back to after an energy violation, and why.

    A model measured cheaper than the one in service comes first (the cheapest); else a
    model not measured yet that the policy lists before it (policies list models from the
    cheapest up, as HarmonE's fixed efficiency table did); else the one in service stays.
    """
    measured = {m: profiles[m].energy_j for m in models if not math.isnan(profiles[m].energy_j)}
    ceiling = measured.get(active, math.inf)
    cheaper = [m for m, energy in measured.items() if m != active and energy < ceiling]
    if cheaper:
        choice = min(cheaper, key=measured.__getitem__)
        # the active model's figure is its latest window's energy_j, as the dashboard shows it
        against = f"; {active} {format_mj(ceiling)}" if active in measured else ""
        return choice, (
            f"{choice} has the lowest measured energy "
            f"({format_mj(measured[choice])} per inference{against})"
        )
    listed_cheaper = [m for m in models[: models.index(active)] if m not in measured]
    if listed_cheaper:
        choice = listed_cheaper[-1]
        return choice, f"{choice} is listed as cheaper than {active} and not measured yet"
    return active, f"no model known to be cheaper than {active}"
