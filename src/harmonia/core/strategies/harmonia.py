"""`harmonia`: our strategy — act on evidence about quality, spend energy only where it pays.

What it does differently from HarmonE, and why:

- **Quality decides, drift explains.** HarmonE retrains whenever the input distribution
  moves, even while the model still predicts well; retraining a network costs more energy
  than thousands of inferences. Here drift alone changes nothing: only a window whose score
  falls below ``min_score`` calls for a remedy, and drift tells which remedy fits.
- **Remedies from cheapest to dearest.** First a stored version of any model trained on
  data like today's (a load, no training: a version tuned for fog is the remedy when fog
  returns, whichever model serves then); then another model with recent evidence of scoring
  better; then a retrain — only when the data has drifted, at most once every
  ``retrain_cooldown`` windows, and only when it is worth its energy by the policy's own
  exchange rate (below).
- **A retrain restores, it does not improve.** What it can win back is the distance to the
  version's held-out promise (or to ``min_score``, if lower): a model scoring at its promise
  is not retrained, however far below ``min_score`` that promise lies.
- **A retrain must pay for itself.** The objective trades quality against energy with its
  weights and energy range; the same rate prices a retrain: its measured energy, spread over
  ``retrain_cooldown`` windows of inferences and normalised by the energy range, times the
  energy weight, must stay below the score it can win back (above), less what a window's
  score moves by chance (``evidence_margin``): a chance-low window is no loss to win back.
  ``payback_windows`` sets a longer horizon where versions serve longer than the cooldown
  (and return: a version tuned for a condition is reused when the condition comes back).
- **No random exploration.** HarmonE switches to a random model one time in ten to learn
  what the others score. Here every version carries what was measured when it was made —
  its held-out quality (R², accuracy: the metric the objective names) and its energy per
  inference — so the strategy knows each model's promise
  before serving it, and serves the cheapest model whose promised score is within
  ``tolerance`` of the best promise: first, and again on every healthy window, so that the
  model a drift called for gives way once it has passed. Scores seen while serving then
  decide the remedies.
  (Comparing one serving window with another would mislead: windows differ in difficulty;
  a 200-sample window of traffic covers part of a day, and night windows are harder.)
- **A low score that persists is drift too.** The watched signal cannot see every change
  (blur leaves an image's luminance as it was). With ``patience`` set, a score below
  ``min_score`` for that many windows in a row allows a retrain even without drift.
- **One low window is not a trend.** The jump at a drift's onset (a daily cycle shifted
  by hours) makes one window score badly while the next scores as before, and a retrain on
  it fits the model to the transient. With ``drift_patience`` set, a drifted window calls
  for a retrain only once the score has stayed below ``min_score`` that many windows in a
  row.
- **Try before you train** (``explore``). Models differ in what they withstand (a small
  network may read dark images better than a large one): a clean-data promise says nothing
  about it. With ``explore`` set, a drifted window whose score fell (below ``min_score``, or
  further by ``evidence_margin``) moves to a model with no score yet on data like it, before
  any retrain: a switch costs no training. A model that reads a drift as it did in the
  window before is not left for a gamble. It goes back to a model already seen on such data
  only if that model scored at least ``min_score`` there, while one is left untried: the
  score of the window a drift began in is half clean data. Off by default: where one model
  is best under every condition (traffic), each try costs energy for nothing.
- **A stress test says what to try.** Where versions store their quality under known
  conditions (``context.<condition>.<quality>``, with the mean of each input feature there:
  ``drift_mean`` for the drift value, ``<feature>_mean`` for each of the policy's
  ``drift.features``; the vision system tests dark, fog, noise and blur and reports
  luminance and sharpness), the condition nearest the window's latest quarter on all those
  features names what the data now is, and its promise is read at the window's strength,
  between the tested ones (`harmonia.core.strategies.stress`); the untried model the test
  promises most there goes first, and one it promises no better than the serving model is
  not tried; a healthy window does not move to a model the test promises less than
  ``min_score`` there. The window is taken for a condition only where its values stray
  from the version's own data by more than chance (``stress.SIGNIFICANT`` standard errors:
  five images may be darker than most by their digits alone). Without a stress test, only
  serving a model shows what it reads, and the best clean promise goes first.
- **Inputs tell before labels do** (``lookahead``). Labels come late or with the
  inputs, but a stress test is read on inputs alone: every ``lookahead`` inputs between
  windows, where the latest look like a condition under which the serving model promises
  less than ``min_score`` and another model at least that (by ``tolerance`` more),
  that model serves at once, and the window closes there. A score seen on a window that
  looked like the same condition overrules the test. The onset of a dark stretch then
  costs five images read by a model that cannot read them, not half a window.
- **Retrain what reads the data best, cheapest first.** Of the models whose recent score on
  data like the window's is within ``evidence_margin`` of the best, the one that costs least
  to fine-tune is retrained (a fine-tune starts from what a model already reads).
- **Windows are noisy.** Another model's recent score counts as better only when it beats
  the window's by ``evidence_margin`` (default: ``tolerance``); on 50 labelled images an
  accuracy moves by several points from one window to the next.
- **Evidence has a context.** A score counts for ``evidence_ttl`` windows, and a remedy only
  trusts scores measured in the same drift state (drifted or not) as the window at hand;
  on drifted data, only where that window's data looks like this one's (within
  ``context_threshold``: a model that reads dark images well says nothing about fog) and,
  where a stress test names conditions, only on a window of the same condition.
  With ``promise_in_context`` a stored promise counts only where the version's training
  data resembles the window (a version tuned for fog promises nothing for the night), and
  a healthy window brings back the archived version trained on data more like it than the
  one in use (not merely like it: two such versions would take turns).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import ClassVar

from harmonia.core.actions import ActionKind
from harmonia.core.knowledge import Knowledge
from harmonia.core.numbers import is_number, number_or_nan
from harmonia.core.policy import Policy
from harmonia.core.scoring import energy_price, score
from harmonia.core.strategies.base import Planned, Situation, Trigger, by_distance, planned
from harmonia.core.strategies.evidence import Evidence, EvidenceLog, sketch
from harmonia.core.strategies.stress import DRIFT, condition_of
from harmonia.core.units import format_joules, format_mj
from harmonia.core.versions import ModelVersion


class HarmoniaStrategy:
    """Evidence-driven, energy-satisficing adaptation (see the module notes).

    >>> strategy = HarmoniaStrategy()
    >>> (strategy.min_score, strategy.tolerance, strategy.retrain_cooldown)
    (0.78, 0.01, 10)
    """

    name: ClassVar[str] = "harmonia"
    #: the stress test stored with versions names the window's condition (explore, the look
    #: ahead, a healthy window's choice)
    reads_stress_test: ClassVar[bool] = True

    def __init__(
        self,
        min_score: float = 0.78,
        tolerance: float = 0.01,
        drift_threshold: float = 0.75,
        reuse_threshold: float = 0.75,
        retrain_cooldown: int = 10,
        evidence_ttl: int = 30,
        drift_detector: str = "kl",
        promise_in_context: bool = False,
        patience: int | None = None,
        payback_windows: int | None = None,
        explore: bool = False,
        drift_patience: int = 1,
        evidence_margin: float | None = None,
        context_threshold: float | None = None,
        lookahead: int | None = None,
    ) -> None:
        if tolerance < 0:
            raise ValueError(f"tolerance must be >= 0, got {tolerance}")
        if retrain_cooldown < 1:
            raise ValueError(f"retrain_cooldown must be >= 1 window, got {retrain_cooldown}")
        if evidence_ttl < 1:
            raise ValueError(f"evidence_ttl must be >= 1 window, got {evidence_ttl}")
        if payback_windows is not None and payback_windows < 1:
            raise ValueError(f"payback_windows must be >= 1 (or unset), got {payback_windows}")
        if patience is not None and patience < 1:
            raise ValueError(f"patience must be >= 1 window (or unset), got {patience}")
        if evidence_margin is not None and evidence_margin < 0:
            raise ValueError(f"evidence_margin must be >= 0 (or unset), got {evidence_margin}")
        if context_threshold is not None and context_threshold < 0:
            raise ValueError(f"context_threshold must be >= 0 (or unset), got {context_threshold}")
        if drift_patience < 1:
            raise ValueError(f"drift_patience must be >= 1 window, got {drift_patience}")
        if lookahead is not None and lookahead < 1:
            raise ValueError(f"lookahead must be >= 1 sample (or unset), got {lookahead}")
        self.min_score = min_score
        self.tolerance = tolerance
        self.drift_threshold = drift_threshold
        self.reuse_threshold = reuse_threshold
        self.retrain_cooldown = retrain_cooldown
        self.evidence_ttl = evidence_ttl
        self.drift_detector = drift_detector
        self.promise_in_context = promise_in_context
        self.patience = patience
        self.payback_windows = payback_windows
        self.explore = explore
        self.drift_patience = drift_patience
        self.evidence_margin = evidence_margin
        self.context_threshold = context_threshold
        self.lookahead = lookahead

    @property
    def _margin(self) -> float:
        """How much better another model's recent score must be to count as better."""
        return self.tolerance if self.evidence_margin is None else self.evidence_margin

    @property
    def detectors(self) -> tuple[str, ...]:
        return (self.drift_detector,)

    def _state(self) -> None:
        if not hasattr(self, "evidence_"):
            self.evidence_ = EvidenceLog(self.evidence_ttl)
            self.last_retrain_: int | None = None
            self.low_streak_ = 0

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
        before = self.evidence_.previous(active, drifted, now)
        sketched = sketch(situation.summary.drift_values)
        tested = self._context_promise(situation, active, latest=False)
        condition = None if tested is None else tested[0]
        self.evidence_.record(active, Evidence(window_score, now, drifted, sketched, condition))
        if window_score < self.min_score:
            self.low_streak_ += 1
            steady = before < self.min_score and window_score >= before - self._margin
            fell = math.isnan(before) or not steady
            return self._remedy(situation, window_score, drift, drifted, fell, condition)
        self.low_streak_ = 0
        return self._economise(situation, window_score)

    def anticipate(self, situation: Situation) -> list[Planned]:
        """Between windows, on the latest ``lookahead`` inputs alone (no labels yet): a
        switch where they look like a condition of the versions' stress test under which
        the model in service promises less than ``min_score`` and another model at least
        that, better by ``tolerance``. A score seen on a window that looked like the same
        condition overrules the test: a model that scored ``min_score`` there is kept, and one
        that scored no better (by ``evidence_margin``) than the model in service is expected
        to there is not chosen. (The window just closed counts only if it did: five dark
        images at its end do not make its score one on dark data.)
        """
        self._state()
        drift = situation.summary.signals.get(f"drift.{self.drift_detector}", math.nan)
        if math.isnan(drift) or drift <= self.drift_threshold:
            return []
        active = situation.active_model
        serving = self._context_promise(situation, active, latest=False)
        if serving is None or serving[1] >= self.min_score:
            return []
        condition = serving[0]
        seen = self.evidence_.latest(
            situation.knowledge.windows_closed + 1,  # the open window's look
            drifted=True,
            alike=lambda evidence: evidence.condition == condition,
        )
        if seen.get(active, -math.inf) >= self.min_score:
            return []
        # a score seen there may be a chance-low window: it rules a model out only where it
        # is no better than what the model in service is expected to read there
        expected = seen.get(active, serving[1])
        offers = {
            m: found[1]
            for m in situation.policy.models
            if m != active
            and (found := self._context_promise(situation, m, latest=False)) is not None
            and seen.get(m, math.inf) > expected + self._margin
        }
        bar = max(self.min_score, serving[1] + self.tolerance)
        good = {m: p for m, p in offers.items() if p >= bar}
        if not good:
            return []
        choice = max(good, key=good.__getitem__)
        count = situation.summary.count
        values = {f"drift.{self.drift_detector}": drift, "promise": serving[1]}
        return [
            planned(
                ActionKind.SWITCH_MODEL,
                f"the latest {count} inputs look like {serving[0]}, where the stress test "
                f"promises {active} {serving[1]:.4f} and {choice} {good[choice]:.4f}: "
                "switched before their labels come",
                Trigger("harmonia: inputs like a condition the model reads badly", values),
                model=choice,
            )
        ]

    def first_model(self, policy: Policy, knowledge: Knowledge) -> str:
        """The model to serve before any window has closed: the cheapest whose stored
        promise is within ``tolerance`` of the best (what a healthy window would choose), or
        the model in service where no version stored a promise. Starting on the most
        accurate model and leaving it after a window costs a window of its energy for
        nothing.
        """
        objective = policy.objective
        window = policy.window.samples
        promise: dict[str, float] = {}
        cost: dict[str, float] = {}
        for model in policy.models:
            energy = _stored(knowledge, model, "energy_j_per_inference")
            quality = _stored(knowledge, model, objective.quality)
            if math.isnan(energy) or math.isnan(quality):
                continue
            promise[model] = score(quality, energy, objective)
            training = retrain_joules(partial(_stored, knowledge, model))
            cost[model] = energy + spread_over(training, (window or 0) * self.evidence_ttl)
        if not promise:
            return knowledge.active_model
        best = max(promise.values())
        good = [m for m in promise if promise[m] >= best - self.tolerance]
        return min(good, key=lambda m: (cost[m], policy.models.index(m)))

    # -- what is known ----------------------------------------------------------------------
    def _recent(
        self, situation: Situation, drifted: bool, condition: str | None
    ) -> dict[str, float]:
        """Each model's latest score younger than ``evidence_ttl`` windows, measured in the
        window's drift state and, on drifted data, on data like the window's (a model that
        reads dark images well says nothing about fog; unknown counts as alike). With
        ``context_threshold`` set, on every window: drift is measured against the serving
        version's training data, so "not drifted" under a noise-tuned version is other data
        than under version 1. Where the serving version carries a stress test, a score
        counts only on a window that looked like the same tested condition as this one
        (``condition``, or like none): a clean window that ended in five dark images says
        nothing of dark.
        """
        compare = drifted or self.context_threshold is not None

        def alike(evidence: Evidence) -> bool:
            return evidence.condition == condition and self._alike(situation, evidence)

        now = situation.knowledge.windows_closed
        return self.evidence_.latest(now, drifted, alike if compare else None)

    def _alike(self, situation: Situation, evidence: Evidence) -> bool:
        threshold = (
            self.drift_threshold if self.context_threshold is None else self.context_threshold
        )
        distance = situation.distance(self.drift_detector, evidence.sketch)
        return math.isnan(distance) or distance <= threshold

    def _promise(self, situation: Situation, model: str) -> float:
        """The score that a model's stored held-out quality (the metric the objective names:
        R², accuracy...) and its energy promise (NaN if unrecorded)."""
        objective = situation.policy.objective
        quality = situation.version_metric(model, objective.quality)
        return score(quality, self._energy(situation, model), objective)

    @staticmethod
    def _energy(situation: Situation, model: str) -> float:
        """Energy per inference: measured while serving, else stored with the version."""
        measured = situation.knowledge.profiles[model].energy_j
        if not math.isnan(measured):
            return measured
        stored = situation.version_metric(model, "energy_j_per_inference")
        return math.inf if math.isnan(stored) else stored

    def _cost(self, situation: Situation, model: str) -> float:
        """What serving a model costs per inference on a drifting stream: its inference
        energy, plus its measured training energy spread over ``evidence_ttl`` windows
        (the horizon over which a retrain is likely to be needed)."""
        training = _retrain_joules(situation, model)
        spread = spread_over(training, situation.summary.count * self.evidence_ttl)
        return self._energy(situation, model) + spread

    # -- healthy: serve the cheapest model that promises to be good enough -----------------
    def _economise(self, situation: Situation, window_score: float) -> list[Planned]:
        active = situation.active_model
        models = situation.policy.models
        cost = {m: self._cost(situation, m) for m in models}
        offers = {m: self._offer(situation, m) for m in models}
        promise = {m: offers[m][1] for m in models}
        # a model the stress test says reads the latest inputs below min_score is not chosen:
        # a look ahead would take it off again (small on noise, at the noise's first images)
        known = [
            m
            for m in models
            if not math.isnan(promise[m]) and (m == active or not self._reads_badly(situation, m))
        ]
        if active not in known:
            return []
        best = max(promise[m] for m in known)
        good = [m for m in known if promise[m] >= best - self.tolerance]
        cheapest = min(good, key=lambda m: (cost[m], models.index(m)))
        version = offers[cheapest][0]
        trigger = Trigger(
            "harmonia: healthy, serve the cheapest good model", {"score": window_score}
        )
        moving = cheapest == active or cost[cheapest] < cost[active] or active not in good
        if version is not None and moving:
            return [
                planned(
                    ActionKind.REUSE_VERSION,
                    f"{cheapest} v{version.version} was trained on data like this window's "
                    f"and promises a score of {promise[cheapest]:.4f}, the best of its "
                    f"versions here and within {self.tolerance} of the best ({best:.4f})",
                    trigger,
                    model=cheapest,
                    version=version.version,
                )
            ]
        quality = situation.policy.objective.quality
        held_out = "R²" if quality == "r2" else quality
        stored = f"held-out {held_out} stored with its version, energy as measured, else as stored"
        if active not in good:
            # the rule that chose the first model, on every healthy window: a detour (a
            # drift's model) ends when the data no longer calls for it
            return [
                planned(
                    ActionKind.SWITCH_MODEL,
                    f"{cheapest} promises more: a score of {promise[cheapest]:.4f} against "
                    f"{active}'s {promise[active]:.4f} ({stored}), the cheapest within "
                    f"{self.tolerance} of the best ({best:.4f})",
                    trigger,
                    model=cheapest,
                )
            ]
        if cost[cheapest] >= cost[active]:
            return []
        return [
            planned(
                ActionKind.SWITCH_MODEL,
                f"{cheapest} promises a score of {promise[cheapest]:.4f} ({stored}), within "
                f"{self.tolerance} of the best ({best:.4f}), "
                + _per_inference(
                    (self._energy(situation, cheapest), self._energy(situation, active)),
                    (cost[cheapest], cost[active]),
                    self.evidence_ttl,
                ),
                trigger,
                model=cheapest,
            )
        ]

    def _reads_badly(self, situation: Situation, model: str) -> bool:
        """Whether the versions' stress test promises ``model`` less than ``min_score`` on
        data like the window's latest quarter."""
        stressed = self._context_promise(situation, model)
        return stressed is not None and stressed[1] < self.min_score

    def _offer(self, situation: Situation, model: str) -> tuple[ModelVersion | None, float]:
        """The version of ``model`` that would serve here (None: the one in use) and the
        score it promises: the best of the version in use's stored promise and, with
        ``promise_in_context``, those of archived versions trained on data like the window's
        (a noise-tuned version left in use once the noise has gone leaves version 1 the
        better offer). With ``promise_in_context`` the version in use counts only where it
        was trained on data like the window's, bar the serving model's when nothing else of
        it does; a model with no offer promises nothing here (NaN). Where the version in use
        counts, an archived one is offered only if it was trained on data more like the
        window's: whether a version "counts" wavers from window to window near the
        threshold, and without that two versions would take turns."""
        if not self.promise_in_context:
            return None, self._promise(situation, model)
        offers: list[tuple[ModelVersion | None, float]] = []
        current = self._current_distance(situation, model)
        in_context = math.isnan(current) or current <= self.drift_threshold
        if in_context:
            offers.append((None, self._promise(situation, model)))
        nearer = current if in_context and not math.isnan(current) else math.inf
        archived = situation.knowledge.archived_versions(model)
        offers += [
            (version, self._version_promise(situation, version))
            for distance, version in by_distance(situation, archived, self.drift_detector)
            if distance <= self.drift_threshold and distance < nearer
        ]
        offers = [(v, p) for v, p in offers if not math.isnan(p)]
        if offers:
            return max(offers, key=lambda offer: offer[1])
        if model == situation.active_model:
            return None, self._promise(situation, model)
        return None, math.nan

    def _version_promise(self, situation: Situation, version: ModelVersion) -> float:
        """The score that one version's stored quality promises (NaN if it stored none)."""
        quality = version.metadata.get(situation.policy.objective.quality)
        if not is_number(quality):
            return math.nan
        energy = self._energy(situation, version.model)
        return score(float(quality), energy, situation.policy.objective)

    def _current_distance(self, situation: Situation, model: str) -> float:
        """How far this window's data is from the current version of ``model``'s training
        data (NaN if unknown)."""
        knowledge = situation.knowledge
        info = knowledge.version_info(model, knowledge.current_versions.get(model))
        return math.nan if info is None else situation.divergence(self.drift_detector, info)

    # -- unhealthy: the cheapest remedy that the evidence supports ---------------------------
    def _remedy(
        self,
        situation: Situation,
        window_score: float,
        drift: float,
        drifted: bool,
        fell: bool,
        condition: str | None,
    ) -> list[Planned]:
        """``fell``: the score just fell below ``min_score``, or fell further (by
        ``evidence_margin``), or the model did not serve the window before in this drift
        state: the data changed, or the model did. Otherwise the model reads the drift as it
        did (a gradual onset falls by less than the margin from one window to the next, but
        crosses ``min_score`` once). ``condition``: the tested condition the window looked
        like as a whole, if any."""
        active = situation.active_model
        now = situation.knowledge.windows_closed
        values = {"score": window_score, "min_score": self.min_score}
        if not math.isnan(drift):
            values[f"drift.{self.drift_detector}"] = drift
        trigger = Trigger("harmonia: score below min_score", values)

        if drifted:
            reuse = self._reuse(situation, trigger)
            if reuse is not None:
                return [reuse]
        # Without drift a low window may just be a hard one (every model has those): only a
        # model that also promises more in general is worth a switch.
        floor = self._promise(situation, active) + self.tolerance
        recent = self._recent(situation, drifted, condition)  # the window's own among them
        better = {
            m: s
            for m, s in recent.items()
            if m != active
            and s > window_score + self._margin
            and (drifted or not self._promise(situation, m) <= floor)
        }
        # Only a change is worth a try: a model that has read this drift for a while and
        # scores as it did is at the drift's level, and untried models are a gamble (a try
        # of a model that cannot read the data costs a window of near-random answers).
        exploring = drifted and self.explore and fell
        untried = self._untried(situation, recent, window_score) if exploring else None
        if better and (untried is None or max(better.values()) >= self.min_score):
            choice = max(better, key=better.__getitem__)
            return [
                planned(
                    ActionKind.SWITCH_MODEL,
                    f"{choice} scored {better[choice]:.4f} recently; {active} {window_score:.4f}",
                    trigger,
                    model=choice,
                )
            ]
        # A model known to score below min_score on such data is no remedy while another
        # has not been tried: its score may come from the window the drift began in.
        if untried is not None:
            stressed = self._context_promise(situation, untried)
            why = (
                f"its stress test under {stressed[0]} promises {stressed[1]:.4f}"
                if stressed is not None
                else "it may cope better"
            )
            return [
                planned(
                    ActionKind.SWITCH_MODEL,
                    f"{untried} has not served data like this yet and {why}: a switch costs "
                    f"no training, a retrain of {active} does",
                    trigger,
                    model=untried,
                )
            ]
        target = self._retrain_target(situation, recent)
        score_now = recent[target]  # the window's, if target serves
        waiting = self._why_not_retrain(situation, target, score_now, drifted, now)
        if waiting is not None:
            return [planned(ActionKind.NONE, waiting, trigger)]
        self.last_retrain_ = now
        instead = (
            ""
            if target == active
            else f" ({target} scored {score_now:.4f} on data like this, as {active} does, and "
            f"costs less to retrain: {format_joules(_retrain_joules(situation, target))})"
        )
        return [
            planned(
                ActionKind.RETRAIN,
                f"retrain {target} on recent data{instead}: "
                + ("it drifted" if drifted else f"its score stayed low {self.low_streak_} windows")
                + " and no archived version or other model does better",
                trigger,
                model=target,
            )
        ]

    def _reuse(self, situation: Situation, trigger: Trigger) -> Planned | None:
        """A stored version of any model (bar the one serving) trained on data like this
        window's (within ``reuse_threshold``), the best promise first, then the nearest;
        None if there is none. A version tuned for fog is the remedy when fog returns,
        whichever model serves then: bringing it back is a load, not a training."""
        knowledge = situation.knowledge
        serving = (situation.active_model, knowledge.active_version)
        versions = [
            version
            for model in situation.policy.models
            for version in knowledge.versions.get(model, [])
            if (version.model, version.version) != serving
        ]
        near = [
            (distance, version)
            for distance, version in by_distance(situation, versions, self.drift_detector)
            if distance < self.reuse_threshold
        ]
        if not near:
            return None

        def promise(version: ModelVersion) -> float:
            promised = self._version_promise(situation, version)
            return -math.inf if math.isnan(promised) else promised

        distance, version = max(near, key=lambda pair: (promise(pair[1]), -pair[0]))
        detector = self.drift_detector
        promised = promise(version)
        return planned(
            ActionKind.REUSE_VERSION,
            f"{version.model} v{version.version} was trained on data closest to the current "
            f"window ({detector} {distance:.3f} < {self.reuse_threshold})"
            + (f" and promises {promised:.4f}" if math.isfinite(promised) else ""),
            Trigger(trigger.rule, {**trigger.values, f"{detector}_to_version": distance}),
            model=version.model,
            version=version.version,
        )

    def _retrain_target(self, situation: Situation, recent: dict[str, float]) -> str:
        """The model to retrain: of those whose recent score on data like this (the window
        at hand included) is within ``evidence_margin`` of the best, the cheapest to retrain. A
        fine-tune starts from what a model already reads well, and trying other models may
        have left one in service that reads the data no better than a cheaper one."""
        active = situation.active_model
        models = situation.policy.models
        best = max(recent.values())
        near = [m for m, s in recent.items() if s >= best - self._margin]

        def cost(model: str) -> tuple[float, bool, int]:
            joules = _retrain_joules(situation, model)
            joules = math.inf if math.isnan(joules) else joules
            return (joules, model != active, models.index(model))

        return min(near, key=cost)

    def _persistent(self) -> bool:
        """Whether the score has stayed low for ``patience`` windows in a row."""
        return self.patience is not None and self.low_streak_ >= self.patience

    def _untried(
        self, situation: Situation, seen: dict[str, float], window_score: float
    ) -> str | None:
        """The model to try before retraining: one without a recent score on data like
        this (None when every model has been seen), even one that promises less on clean
        data than the model in service. Models differ in what they withstand (a small
        network may read dark images better than a large one); a switch costs no training.

        Where versions carry a stress test whose condition the window resembles
        (`_context_promise`), the best promise there goes first, and a model it promises no
        better than the serving model (by ``tolerance``: promises are compared as promises;
        else than the window's score, by ``evidence_margin``) is not tried; otherwise the
        best stored promise goes first, and only serving a model shows what it reads.
        ``seen``: the recent scores on data like this (`_recent`)."""
        candidates = [m for m in situation.policy.models if m not in seen]
        stressed = {m: self._context_promise(situation, m) for m in candidates}
        if any(found is not None for found in stressed.values()):
            promise = {m: -math.inf if p is None else p[1] for m, p in stressed.items()}
            # Against what the stress test promised the serving model there, where it has
            # one: a strong drift takes every model below its stress test's figure.
            serving = self._context_promise(situation, situation.active_model)
            bar = window_score + self._margin if serving is None else serving[1] + self.tolerance
            candidates = [m for m in candidates if stressed[m] is None or promise[m] > bar]
        else:
            promise = {m: self._promise(situation, m) for m in candidates}
        if not candidates:
            return None
        return max(candidates, key=lambda m: -math.inf if math.isnan(promise[m]) else promise[m])

    def _context_promise(
        self, situation: Situation, model: str, *, latest: bool = True
    ) -> tuple[str, float] | None:
        """The condition of the version's stress test that the window resembles, and the
        score promised there; None where the version has no stress test or the window
        looks more like the version's own training data than like any tested condition.

        A stress test is stored with the version as ``context.<condition>.<quality>`` (the
        objective's quality metric) and the means of the input features on the data it was
        measured on (`harmonia.core.strategies.stress`); the condition nearest the window's
        latest quarter is the one it resembles (``latest=False``: all the window's values).
        """
        knowledge = situation.knowledge
        info = knowledge.version_info(model, knowledge.current_versions.get(model))
        summary = situation.summary
        if info is None or summary.drift_values.size == 0:
            return None
        # the window's latest quarter: a drift that began inside the window is what the
        # next one will see (a window of 25 images may hold four dark ones)
        read = {
            feature: values[-max(1, values.size // 4) :] if latest else values
            for feature, values in {DRIFT: summary.drift_values, **summary.features}.items()
        }
        quality = situation.policy.objective.quality
        found = condition_of(read, info.metadata, info.fingerprint, quality)
        if found is None:
            return None
        name, promised = found
        return name, score(promised, self._energy(situation, model), situation.policy.objective)

    def _why_not_retrain(
        self, situation: Situation, model: str, window_score: float, drifted: bool, now: int
    ) -> str | None:
        """None if a retrain of ``model`` (the one to retrain, scoring ``window_score``
        on data like this) is due; otherwise why not."""
        if not drifted and not self._persistent():
            return f"no drift: {model} is not worse for new data; nothing better is known"
        if drifted and self.low_streak_ < self.drift_patience and not self._persistent():
            return (
                f"drifted, but {model} has scored low {self.low_streak_} window(s) in a row, "
                f"fewer than {self.drift_patience}: it may be a transient"
            )
        if self.last_retrain_ is not None and now - self.last_retrain_ <= self.retrain_cooldown:
            return f"a retrain ran {now - self.last_retrain_} windows ago; waiting"
        # A retrain restores the level a version reached on held-out data; it does not raise
        # a model above it. Where that level is below min_score, the model scoring at it has
        # lost nothing a retrain could win back (a cheap model on clean data).
        promised = self._promise(situation, model)
        level = self.min_score if math.isnan(promised) else min(self.min_score, promised)
        gain = level - window_score
        if gain <= 0:
            return (
                f"{model} scores {window_score:.4f}, no less than its version's held-out "
                f"promise ({promised:.4f}): a retrain wins back what drift took, and nothing was"
            )
        joules = _retrain_joules(situation, model)
        if math.isnan(joules):
            return None
        horizon = self.payback_windows or self.retrain_cooldown
        spread = spread_over(joules, situation.summary.count * horizon)
        price = energy_price(spread, situation.policy.objective)
        if price > gain - self._margin:
            return (
                f"a retrain of {model} costs {format_joules(joules)}: worth {price:.3f} in score "
                f"over {horizon} windows, more than the {gain:.3f} it can win back less the "
                f"{self._margin:.3f} a window's score moves by chance"
            )
        return None


def _stored(knowledge: Knowledge, model: str, name: str) -> float:
    """A metric stored with the current version of ``model`` (NaN if it has none)."""
    info = knowledge.version_info(model, knowledge.current_versions.get(model))
    return number_or_nan(info.metadata.get(name) if info is not None else None)


def retrain_joules(metric: Callable[[str], float]) -> float:
    """What retraining a model costs, from its version's metrics (``metric(name)``, NaN where
    unrecorded): ``retrain_joules`` where the system measured a retrain (a fine-tune costs
    less than training from scratch), else the version's training energy.

    >>> retrain_joules({"retrain_joules": 2.0, "training_joules": 30.0}.__getitem__)
    2.0
    >>> retrain_joules({"retrain_joules": math.nan, "training_joules": 30.0}.__getitem__)
    30.0
    """
    measured = metric("retrain_joules")
    return measured if not math.isnan(measured) else metric("training_joules")


def spread_over(joules: float, inferences: int) -> float:
    """Training energy shared among the ``inferences`` it serves; nothing where it was not
    measured (NaN) or serves no inference.

    >>> spread_over(2.0, 1000), spread_over(math.nan, 1000), spread_over(2.0, 0)
    (0.002, 0.0, 0.0)
    """
    return 0.0 if math.isnan(joules) or inferences <= 0 else joules / inferences


def _retrain_joules(situation: Situation, model: str) -> float:
    """What retraining ``model`` (its current version) costs: `retrain_joules`."""
    return retrain_joules(partial(situation.version_metric, model))


def _per_inference(energy: tuple[float, float], cost: tuple[float, float], ttl: int) -> str:
    """``for 0.02 mJ instead of 0.8 mJ per inference``: the energy of the cheaper model and of
    the one in service as measured (else as stored), the figures the window's ``energy_j`` and
    the dashboard show; then the costs they were ranked by, where training energy adds to them.
    """
    text = f"for {format_mj(energy[0])} instead of {format_mj(energy[1])} per inference"
    if cost != energy:
        text += (
            f" ({format_mj(cost[0])} instead of {format_mj(cost[1])} with training energy "
            f"spread over {ttl} windows)"
        )
    return text
