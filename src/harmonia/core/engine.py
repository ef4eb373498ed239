"""The MAPE-K engine: pure and clock-injected.

``Engine.step(knowledge, now)`` closes a window when the policy's cadence says so, computes
its signals (Monitor), evaluates the boundaries (Analyze), asks the strategy (Plan) and
returns the actions with their explanations (Execute is the driver's job: the server
delivers them over the network, the replay lab applies them in-process). It never sleeps,
reads files or opens sockets, so the same code runs live and in an event-time replay.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from harmonia.core.actions import Action, ActionKind
from harmonia.core.drift import DriftDetector
from harmonia.core.knowledge import Knowledge
from harmonia.core.monitor import WindowSummary, split_at_switches, summarize
from harmonia.core.policy import Cooldown, Policy
from harmonia.core.strategies.base import Planned, Situation, Strategy, Violation
from harmonia.core.telemetry import TelemetrySample

DetectorFactory = Callable[[], DriftDetector]


@dataclass
class _FittedDetectors:
    """Detectors fitted on the current reference; refitted only when the reference changes."""

    reference: np.ndarray | None = None
    detectors: dict[str, DriftDetector] = field(default_factory=dict)


class Engine:
    """One MAPE-K loop for one managed system.

    >>> from harmonia.core.policy import parse_policy
    >>> from harmonia.core.strategies.single import SingleStrategy
    >>> policy = parse_policy({"policy": "p", "system": "s", "models": ["m"], "window": 2})
    >>> engine = Engine(policy, SingleStrategy())
    >>> knowledge = engine.new_knowledge()
    >>> engine.step(knowledge, now=0.0)
    []
    """

    def __init__(
        self,
        policy: Policy,
        strategy: Strategy,
        detectors: Mapping[str, DetectorFactory] | None = None,
        *,
        seed: int = 0,
    ) -> None:
        self.policy = policy
        self.strategy = strategy
        self.detector_factories = dict(detectors or {})
        needed = set(policy.drift_detectors()) | set(strategy.detectors)
        missing = sorted(needed - set(self.detector_factories))
        if missing:
            raise ValueError(
                f"the policy or strategy {strategy.name!r} reads drift detectors "
                f"{', '.join(missing)} but the engine was given none of that name"
            )
        self.rng = random.Random(seed)
        self._fitted = _FittedDetectors()

    def new_knowledge(self) -> Knowledge:
        """Empty knowledge with the policy's models and its start model in service."""
        return Knowledge(self.policy.models, self.policy.start_model)

    def begin(self, knowledge: Knowledge, now: float) -> Action | None:
        """The decision before any window has closed: a switch to the strategy's first model
        where it chooses one (``first_model``, as `harmonia` does from the promises stored
        with the versions) and it is not the model in service; else None.

        Live and in replay alike the driver asks once, before the first sample is judged.
        It starts no cooldown: nothing observed was reacted to.
        """
        choose = getattr(self.strategy, "first_model", None)
        if choose is None:
            return None
        first = choose(self.policy, knowledge)
        if first == knowledge.active_model:
            return None
        return Action(
            kind=ActionKind.SWITCH_MODEL,
            model=first,
            ts=now,
            strategy=self.strategy.name,
            reason=f"start on {first}, {self.strategy.name}'s first model, chosen from what "
            f"the versions stored before any window was observed ({knowledge.active_model} "
            "was serving)",
            trigger="first model",
        )

    def step(self, knowledge: Knowledge, now: float) -> list[Action]:
        """Close the window if it is due and decide; ``[]`` when no window closed.

        Between closes, a strategy with a ``lookahead`` looks at every ``lookahead`` new
        inputs (`_look_ahead`); where it acts on them, the window closes early.
        """
        if not knowledge.window_due(self.policy.window, now):
            return self._look_ahead(knowledge, now)
        summary, serving = self._close(knowledge, knowledge.take_window(self.policy.window))
        if not serving:
            return []  # the model in service has not served yet: nothing to judge it by
        violations = tuple(
            Violation(boundary, evaluation)
            for boundary in self.policy.boundaries
            if (evaluation := boundary.when.evaluate(summary.signals)).fired
        )
        plans = self.strategy.decide(self._situation(knowledge, summary, now, violations))
        actions = [self._stamp(plan, summary, now) for plan in plans]
        actions = self._cool_down(actions, knowledge, now)
        knowledge.record_actions(actions)
        return actions

    def _close(
        self, knowledge: Knowledge, taken: list[TelemetrySample]
    ) -> tuple[WindowSummary, bool]:
        """Record the window of ``taken`` samples: its summary, and whether the model in
        service served its last part (only then is it judged).

        Fair attribution: a window that spans a switch is cut at the switch; each part is
        credited to the model that served it, and only the last part (the model in service)
        is judged, so a fresh model is not blamed for its predecessor's samples.
        """
        *earlier, samples = split_at_switches(taken)
        for part in earlier:
            served = summarize(
                part, self.policy, model=part[0].model, version=part[0].model_version
            )
            knowledge.credit(served, part)
        serving = samples[0].model == knowledge.active_model
        summary = summarize(
            samples,
            self.policy,
            model=knowledge.active_model if serving else samples[0].model,
            version=knowledge.active_version if serving else samples[0].model_version,
            detectors=self._detectors_for(knowledge),
        )
        summary.signals.update(knowledge.observer_signals)
        knowledge.record_window(summary, samples)
        return summary, serving

    def _situation(
        self,
        knowledge: Knowledge,
        summary: WindowSummary,
        now: float,
        violations: tuple[Violation, ...] = (),
    ) -> Situation:
        return Situation(
            now=now,
            policy=self.policy,
            summary=summary,
            violations=violations,
            knowledge=knowledge,
            rng=self.rng,
            detector_factories=self.detector_factories,
        )

    def _look_ahead(self, knowledge: Knowledge, now: float) -> list[Action]:
        """Labels come late, inputs at once: every ``lookahead`` inputs of the open window,
        all served by the model in service, a strategy with ``anticipate`` may act on what
        they look like (`harmonia` switches where its versions' stress test says the inputs
        are of a kind the model in service reads badly and another reads well).

        An action closes the window at once: what was open is recorded as a short window,
        and the next window is the new model's alone. Nothing is recorded where the
        strategy does not act or the cooldown holds the action back; judging a partial
        window would be judging it on too few labels.
        """
        every: int | None = getattr(self.strategy, "lookahead", None)
        anticipate = getattr(self.strategy, "anticipate", None)
        pending = knowledge.window
        if not every or anticipate is None or len(pending) % every or not pending:
            return []
        latest = pending[-every:]
        active = knowledge.active_model
        if any(sample.model != active for sample in latest):
            return []
        summary = summarize(
            latest,
            self.policy,
            model=active,
            version=knowledge.active_version,
            detectors=self._detectors_for(knowledge),
        )
        plans: list[Planned] = anticipate(self._situation(knowledge, summary, now))
        actions = self._cool_down([self._stamp(p, summary, now) for p in plans], knowledge, now)
        actions = [action for action in actions if action.kind is not ActionKind.NONE]
        if not actions:
            return []
        self._close(knowledge, knowledge.take_window(self.policy.window))
        knowledge.record_actions(actions)
        return actions

    # -- Monitor helpers -----------------------------------------------------------------
    def _detectors_for(self, knowledge: Knowledge) -> dict[str, DriftDetector]:
        """Detectors fitted on the reference in force: the training data of the version in
        service, or the previous window, or (before either is known) nothing to compare with.
        """
        if self.policy.drift.reference == "previous_window":
            reference = knowledge.summaries[-1].drift_values if knowledge.summaries else None
        else:
            reference = knowledge.reference_values()
        if reference is None or reference.size == 0:
            return {}
        if self._fitted.reference is not reference:
            self._fitted = _FittedDetectors(
                reference,
                {name: make().fit(reference) for name, make in self.detector_factories.items()},
            )
        return self._fitted.detectors

    # -- Execute helpers -----------------------------------------------------------------
    def _stamp(self, plan: Planned, summary: WindowSummary, now: float) -> Action:
        decision = plan.decision
        return Action(
            kind=decision.kind,
            model=decision.model,
            version=decision.version,
            ts=now,
            strategy=self.strategy.name,
            reason=decision.reason,
            trigger=plan.trigger.rule,
            values=plan.trigger.values,
            context={
                "window_start": summary.start,
                "window_end": summary.end,
                "model": summary.model,
                "version": summary.version,
                "score": summary.signals.get("score"),
                "quality": summary.signals.get("quality"),
                "energy_j": summary.signals.get("energy_j"),
            },
        )

    def _cool_down(self, actions: list[Action], knowledge: Knowledge, now: float) -> list[Action]:
        """Hold back every action while the policy's cooldown since the last one runs.

        The engine enforces it, not the strategies, so no strategy can thrash.
        """
        cooldown = self.policy.cooldown
        since = knowledge.windows_since_action()
        by_windows = since is not None and since <= cooldown.windows
        by_time = (
            knowledge.last_action_ts is not None
            and now - knowledge.last_action_ts < cooldown.seconds
        )
        if not (by_windows or by_time):
            return actions
        held = []
        for action in actions:
            if action.kind is ActionKind.NONE:
                held.append(action)
                continue
            wanted = action.kind.value + (f" → {action.model}" if action.model else "")
            held.append(
                action.model_copy(
                    update={
                        "kind": ActionKind.NONE,
                        "model": None,
                        "version": None,
                        "reason": f"held by cooldown ({_describe(cooldown)}); "
                        f"wanted {wanted}: {action.reason}",
                    }
                )
            )
        return held


def _describe(cooldown: Cooldown) -> str:
    parts = [f"{cooldown.windows} windows"] if cooldown.windows else []
    if cooldown.seconds:
        parts.append(f"{cooldown.seconds:g} s")
    return " and ".join(parts)
