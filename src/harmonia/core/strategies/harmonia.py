"""`harmonia`: our strategy — act on evidence about quality, spend energy only where it pays.

What it does differently from HarmonE, and why:

- **Quality decides, drift explains.** HarmonE retrains whenever the input distribution
  moves, even while the model still predicts well; retraining a network costs more energy
  than thousands of inferences. Here drift alone changes nothing: only a window whose score
  falls below ``min_score`` calls for a remedy, and drift tells which remedy fits.
- **Remedies from cheapest to dearest.** First an archived version trained on data closer
  to today's than the version in service (a load, no training); then another model with
  recent evidence of scoring better; then a retrain of the model in service — only when the
  data has drifted, at most once every ``retrain_cooldown`` windows, and only when it is
  worth its energy by the policy's own exchange rate (below).
- **A retrain must pay for itself.** The objective trades quality against energy with its
  weights and energy range; the same rate prices a retrain: its measured energy, spread over
  ``retrain_cooldown`` windows of inferences and normalised by the energy range, times the
  energy weight, must stay below the score it can win back (``min_score`` − score).
- **No random exploration.** HarmonE switches to a random model one time in ten. Here a
  model is tried when there is something to learn and little to lose: while quality is
  healthy, a model with no recent score whose stored measurements (energy per inference and
  held-out R², recorded with its version) promise a score within ``tolerance`` of the model
  in service, for less energy, is probed for one window, and kept if it delivers.
- **Satisficing on energy.** Among models with recent scores within ``tolerance`` of the
  best, the cheapest serves.
- **Evidence has a context.** A score counts for ``evidence_ttl`` windows, and a remedy only
  trusts scores measured in the same drift state (drifted or not) as the window at hand.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from harmonia.core.actions import ActionKind
from harmonia.core.scoring import score
from harmonia.core.strategies.base import Planned, Situation, Trigger, planned, reuse_or_retrain


@dataclass(frozen=True)
class _Evidence:
    score: float
    window: int
    drifted: bool


class HarmoniaStrategy:
    """Evidence-driven, energy-satisficing adaptation (see the module notes).

    >>> strategy = HarmoniaStrategy()
    >>> (strategy.min_score, strategy.tolerance, strategy.retrain_cooldown)
    (0.78, 0.01, 10)
    """

    name: ClassVar[str] = "harmonia"

    def __init__(
        self,
        min_score: float = 0.78,
        tolerance: float = 0.01,
        drift_threshold: float = 0.75,
        reuse_threshold: float = 0.75,
        retrain_cooldown: int = 10,
        evidence_ttl: int = 30,
        probe_cheaper: bool = True,
        drift_detector: str = "kl",
    ) -> None:
        if tolerance < 0:
            raise ValueError(f"tolerance must be >= 0, got {tolerance}")
        if retrain_cooldown < 1:
            raise ValueError(f"retrain_cooldown must be >= 1 window, got {retrain_cooldown}")
        if evidence_ttl < 1:
            raise ValueError(f"evidence_ttl must be >= 1 window, got {evidence_ttl}")
        self.min_score = min_score
        self.tolerance = tolerance
        self.drift_threshold = drift_threshold
        self.reuse_threshold = reuse_threshold
        self.retrain_cooldown = retrain_cooldown
        self.evidence_ttl = evidence_ttl
        self.probe_cheaper = probe_cheaper
        self.drift_detector = drift_detector

    @property
    def detectors(self) -> tuple[str, ...]:
        return (self.drift_detector,)

    def _state(self) -> None:
        if not hasattr(self, "evidence_"):
            self.evidence_: dict[str, _Evidence] = {}
            self.probe_: tuple[str, str, float] | None = None  # probed, origin, its score
            self.last_retrain_: int | None = None

    def decide(self, situation: Situation) -> list[Planned]:
        self._state()
        signals = situation.summary.signals
        active = situation.active_model
        window_score = signals.get("score", math.nan)
        if math.isnan(window_score):
            return []
        now = situation.knowledge.windows_closed
        drift = signals.get(f"drift.{self.drift_detector}", math.nan)
        drifted = not math.isnan(drift) and drift > self.drift_threshold
        self.evidence_[active] = _Evidence(window_score, now, drifted)
        if self.probe_ is not None and self.probe_[0] == active:
            return self._end_probe(window_score)
        self.probe_ = None
        if window_score < self.min_score:
            return self._remedy(situation, window_score, drift, drifted)
        return self._economise(situation, window_score)

    # -- what is known ----------------------------------------------------------------------
    def _recent(self, now: int, drifted: bool | None = None) -> dict[str, float]:
        """Scores younger than ``evidence_ttl`` windows (in one drift state, if given)."""
        return {
            m: e.score
            for m, e in self.evidence_.items()
            if now - e.window < self.evidence_ttl and drifted in (None, e.drifted)
        }

    @staticmethod
    def _expected_score(situation: Situation, model: str, energy: float) -> float:
        """The score a model's stored held-out R² and energy promise (NaN if unrecorded)."""
        r2 = situation.version_metric(model, "r2")
        return score(r2, energy, situation.policy.objective)

    @staticmethod
    def _energy(situation: Situation, model: str) -> float:
        """Energy per inference: measured while serving, else stored with the version."""
        measured = situation.knowledge.profiles[model].energy_j
        if not math.isnan(measured):
            return measured
        stored = situation.version_metric(model, "energy_j_per_inference")
        return math.inf if math.isnan(stored) else stored

    # -- healthy: serve the cheapest model that is good enough -------------------------------
    def _economise(self, situation: Situation, window_score: float) -> list[Planned]:
        active = situation.active_model
        now = situation.knowledge.windows_closed
        recent = self._recent(now)
        best = max(recent.values())
        cost = {m: self._energy(situation, m) for m in situation.policy.models}
        good = [m for m, s in recent.items() if s >= best - self.tolerance]
        cheapest = min(good, key=cost.__getitem__)
        trigger = Trigger("harmonia: healthy, look for savings", {"score": window_score})
        if cost[cheapest] < cost[active]:
            return [
                planned(
                    ActionKind.SWITCH_MODEL,
                    f"{cheapest} scored within {self.tolerance} of the best "
                    f"({recent[cheapest]:.4f}) for less energy",
                    trigger,
                    model=cheapest,
                )
            ]
        promise = {m: self._expected_score(situation, m, cost[m]) for m in cost}
        bar = promise[active] - self.tolerance
        cheaper = [
            m
            for m in situation.policy.models
            if cost[m] < cost[active] and m not in recent and not promise[m] < bar
        ]
        if not (self.probe_cheaper and cheaper):
            return []
        probe = min(cheaper, key=cost.__getitem__)
        self.probe_ = (probe, active, window_score)
        return [
            planned(
                ActionKind.SWITCH_MODEL,
                f"probe {probe} for one window: its measurements say it is cheaper "
                f"({cost[probe]:.3g} J against {cost[active]:.3g} J) and it has no recent score",
                trigger,
                model=probe,
            )
        ]

    def _end_probe(self, window_score: float) -> list[Planned]:
        assert self.probe_ is not None
        probe, origin, reference = self.probe_
        self.probe_ = None
        if window_score >= reference - self.tolerance:
            return []  # the cheaper model is good enough: it stays
        return [
            planned(
                ActionKind.SWITCH_MODEL,
                f"back to {origin}: {probe} scored {window_score:.4f}, more than "
                f"{self.tolerance} below {origin}'s {reference:.4f}",
                Trigger("harmonia: probe ended", {"score": window_score, "reference": reference}),
                model=origin,
            )
        ]

    # -- unhealthy: the cheapest remedy that the evidence supports ---------------------------
    def _remedy(
        self, situation: Situation, window_score: float, drift: float, drifted: bool
    ) -> list[Planned]:
        active = situation.active_model
        now = situation.knowledge.windows_closed
        values = {"score": window_score, "min_score": self.min_score}
        if not math.isnan(drift):
            values[f"drift.{self.drift_detector}"] = drift
        trigger = Trigger("harmonia: score below min_score", values)

        if drifted:
            reuse = reuse_or_retrain(
                situation,
                active,
                trigger,
                detector=self.drift_detector,
                threshold=self.reuse_threshold,
            )
            if reuse.decision.kind is ActionKind.REUSE_VERSION:
                return [reuse]
        better = {
            m: s
            for m, s in self._recent(now, drifted).items()
            if m != active and s > window_score + self.tolerance
        }
        if better:
            choice = max(better, key=better.__getitem__)
            return [
                planned(
                    ActionKind.SWITCH_MODEL,
                    f"{choice} scored {better[choice]:.4f} recently; {active} {window_score:.4f}",
                    trigger,
                    model=choice,
                )
            ]
        waiting = self._why_not_retrain(situation, window_score, drifted, now)
        if waiting is not None:
            return [planned(ActionKind.NONE, waiting, trigger)]
        self.last_retrain_ = now
        return [
            planned(
                ActionKind.RETRAIN,
                f"retrain {active} on recent data: it drifted and no archived version or "
                "other model does better",
                trigger,
                model=active,
            )
        ]

    def _why_not_retrain(
        self, situation: Situation, window_score: float, drifted: bool, now: int
    ) -> str | None:
        """None if a retrain is due; otherwise why not."""
        active = situation.active_model
        if not drifted:
            return f"no drift: {active} is not worse for new data; nothing better is known"
        if self.last_retrain_ is not None and now - self.last_retrain_ <= self.retrain_cooldown:
            return f"a retrain ran {now - self.last_retrain_} windows ago; waiting"
        joules = situation.version_metric(active, "training_joules")
        if math.isnan(joules):
            return None
        objective = situation.policy.objective
        low, high = objective.energy_range_j
        spread = joules / (situation.summary.count * self.retrain_cooldown)
        price = objective.weights.energy * spread / (high - low)
        gain = self.min_score - window_score
        if price > gain:
            return (
                f"a retrain of {active} costs {joules:.3g} J: worth {price:.3f} in score over "
                f"{self.retrain_cooldown} windows, more than the {gain:.3f} it can win back"
            )
        return None
