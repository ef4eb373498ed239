"""The live loop: one engine per application, driven by the wall clock as telemetry arrives.

The engine is asked as soon as a window can be due, so a window closes on the sample that
completes it and its boundaries are evaluated at once — not on a timer. A window of N samples
is fed a run of samples at a time (up to the one that fills it), a time window sample by
sample: the same calls in the same order, so the same windows and decisions.
What is in service is learnt from the telemetry itself: a sample reporting another model
or version than the knowledge holds means the system applied a change.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from operator import itemgetter
from typing import Any

from pydantic import BaseModel

from harmonia.core.actions import Action, ActionKind
from harmonia.core.engine import Engine
from harmonia.core.knowledge import Knowledge
from harmonia.core.monitor import WindowSummary
from harmonia.core.policy import Policy
from harmonia.core.telemetry import TelemetrySample
from harmonia.core.versions import ModelVersion
from harmonia.policies import build_engine

_MODEL = itemgetter("model")
_VERSION = itemgetter("model_version")
_NEW = object.__new__
_SET_DICT = object.__setattr__
# pydantic's own slots of every model instance, set through their descriptors: half the
# cost of `TelemetrySample.trusted`'s generic setattr calls, for the same object
_SET_FIELDS_SET = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_SET_EXTRA = BaseModel.__dict__["__pydantic_extra__"].__set__
_SET_PRIVATE = BaseModel.__dict__["__pydantic_private__"].__set__


def _samples(rows: Sequence[dict[str, Any]]) -> list[TelemetrySample]:
    """`TelemetrySample.trusted` of each row (the same objects, made more cheaply): the
    fields were validated with the batch. A pass per slot, each a C-level ``map`` drained
    by a ``deque`` of no length: no Python bytecode runs per sample."""
    count = len(rows)
    samples = list(map(_NEW, repeat(TelemetrySample, count)))
    deque(map(_SET_DICT, samples, repeat("__dict__"), rows), maxlen=0)
    deque(map(_SET_FIELDS_SET, samples, map(set, repeat((), count))), maxlen=0)
    deque(map(_SET_EXTRA, samples, repeat(None)), maxlen=0)
    deque(map(_SET_PRIVATE, samples, repeat(None)), maxlen=0)
    return samples


@dataclass(frozen=True)
class Ingested:
    """What a batch did to the loop: the windows it closed and the decisions taken."""

    actions: list[Action]
    windows: list[WindowSummary]


#: an action as `LiveLoop._new` compares them: kind, model, version
_Key = tuple[ActionKind, str | None, int | None]


class LiveLoop:
    """MAPE-K for one application; thread-safe (one lock per application)."""

    def __init__(
        self, app: str, policy: Policy, *, seed: int = 0, clock: Callable[[], float] = time.time
    ) -> None:
        self.app = app
        self.clock = clock
        self.lock = threading.Lock()
        self.engine: Engine = build_engine(policy, seed=seed)
        self.knowledge: Knowledge = self.engine.new_knowledge()
        #: what was serving, and the actions decided since it began to (see `_new`)
        self._in_flight: tuple[tuple[str, int | None], set[_Key]] | None = None
        #: whether the engine was asked for its first model (see `_begin`)
        self._begun = False

    @property
    def policy(self) -> Policy:
        return self.engine.policy

    def replace_policy(self, policy: Policy, *, seed: int = 0) -> None:
        """A new policy takes effect at the next window; what is known stays: the models'
        versions and the one each serves (not the first known), what they achieved, and the
        windows closed so far (the status shows the last one until the next closes)."""
        engine = build_engine(policy, seed=seed)
        with self.lock:
            old = self.knowledge
            fresh = engine.new_knowledge()
            for model in fresh.models:
                for info in old.versions.get(model, []):
                    fresh.add_version(info)
                if old.current_versions.get(model) is not None:
                    fresh.current_versions[model] = old.current_versions[model]
                if model in old.profiles:
                    fresh.profiles[model] = old.profiles[model]
            if old.active_model in fresh.models:
                fresh.activate(old.active_model, old.active_version)
                fresh.observed_reference = old.observed_reference
            fresh.summaries.extend(old.summaries)
            fresh.windows_closed = old.windows_closed
            fresh.window = list(self.knowledge.window)
            fresh.window_started = self.knowledge.window_started
            fresh.observer_signals = dict(self.knowledge.observer_signals)
            self.engine, self.knowledge = engine, fresh

    def ingest(self, rows: Sequence[dict[str, Any]]) -> Ingested:
        """Feed validated samples, each a dict of every `TelemetrySample` field (kept, not
        copied); return the windows they closed and the decisions those triggered."""
        actions: list[Action] = []
        trusted = TelemetrySample.trusted
        with self.lock:
            knowledge, step, clock = self.knowledge, self.engine.step, self.clock
            size = self.engine.policy.window.samples
            closed = knowledge.windows_closed
            if not self._begun and rows:
                self._begin(rows[0], actions)
            if size is not None:
                self._ingest_counted(rows, size, actions)
                rows = ()  # all fed
            serving = None
            for row in rows:
                if (row["model"], row["model_version"]) != serving:
                    self._follow(row)
                    serving = (row["model"], row["model_version"])
                knowledge.observe(trusted(row))
                if size is not None and len(knowledge.window) < size:
                    continue  # a window of samples cannot be due before it is full
                decided = [a for a in step(knowledge, clock()) if self._new(a)]
                if decided:
                    actions.extend(decided)
                    serving = None
            new = min(knowledge.windows_closed - closed, len(knowledge.summaries))
            windows = list(knowledge.summaries)[len(knowledge.summaries) - new :]
        return Ingested(actions, windows)

    def _ingest_counted(
        self, rows: Sequence[dict[str, Any]], size: int, actions: list[Action]
    ) -> None:
        """`ingest` for a window of ``size`` samples, a run of rows at a time: what it does
        per sample in Python (a sample object, a call to observe, a length check) was most of
        the loop's cost, and nothing between two closes reads the window. The same calls
        happen in the same order as sample by sample: ``_follow`` at each change of the
        model or version served (and after a decision), the engine's step once the window
        is full (after every sample while it holds more, as after a smaller policy) and, for
        a strategy with a ``lookahead``, at every ``lookahead`` samples of it, so the windows
        and decisions are the same."""
        knowledge, step, clock = self.knowledge, self.engine.step, self.clock
        # a strategy that looks ahead is asked every `every` samples between closes too
        every: int | None = getattr(self.engine.strategy, "lookahead", None)
        serving: tuple[str, int | None] | None = None
        at, count = 0, len(rows)
        while at < count:
            room = size - len(knowledge.window)
            if every:
                room = min(room, every - len(knowledge.window) % every)
            run = rows[at : at + max(room, 1)]
            at += len(run)
            models = list(map(_MODEL, run))
            versions = list(map(_VERSION, run))
            first = (models[0], versions[0])
            if models.count(first[0]) == len(run) and versions.count(first[1]) == len(run):
                if first != serving:  # one model and version throughout: the common case
                    self._follow(run[0])
                    serving = first
            else:
                for row, key in zip(run, zip(models, versions, strict=True), strict=True):
                    if key != serving:
                        self._follow(row)
                        serving = key
            if knowledge.window_started is None:
                knowledge.window_started = run[0]["ts"]
            knowledge.window.extend(_samples(run))
            filled = len(knowledge.window)
            if filled < size and not (every and filled % every == 0):
                continue
            decided = [a for a in step(knowledge, clock()) if self._new(a)]
            if decided:
                actions.extend(decided)
                serving = None

    def _begin(self, first: dict[str, Any], actions: list[Action]) -> None:
        """On the application's first sample, what the system reports serving is followed
        and the engine asked for the model to start on (`Engine.begin`), as the replay lab
        asks it before its first sample: a strategy that chooses its first model does so
        live too, at the sample's time. Once only: a loop rebuilt on stored telemetry does not
        start over."""
        self._begun = True
        self._follow(first)
        begun = self.engine.begin(self.knowledge, first["ts"])
        if begun is not None and self._new(begun):
            actions.append(begun)

    def _new(self, action: Action) -> bool:
        """False for a repeat of an action still on its way: until the telemetry shows the
        system serving something else, deciding it again would only queue a duplicate
        (windows close faster than a system applies an action, a retrain above all), also
        where another action was decided in between."""
        if action.kind is ActionKind.NONE:
            return True
        knowledge = self.knowledge
        key = (action.kind, action.model, action.version)
        serving = (knowledge.active_model, knowledge.active_version)
        if self._in_flight is None or self._in_flight[0] != serving:
            self._in_flight = (serving, set())
        if key in self._in_flight[1]:
            return False
        self._in_flight[1].add(key)
        return True

    def action_failed(self) -> None:
        """The system could not carry out an action: deciding it again is allowed."""
        with self.lock:
            self._in_flight = None

    def restore(
        self,
        served: tuple[str, int | None] | None,
        in_flight: tuple[str, str | None, int | None] | None,
    ) -> None:
        """Take up where the store left off: ``served`` is the model and version of the last
        stored sample, ``in_flight`` the kind, model and version of the latest action not yet
        applied (so that a rebuilt loop does not queue it again)."""
        with self.lock:
            if served is not None:
                self._begun = True
                self._follow({"model": served[0], "model_version": served[1]})
            if in_flight is not None:
                kind, model, version = in_flight
                knowledge = self.knowledge
                self._in_flight = (
                    (knowledge.active_model, knowledge.active_version),
                    {(ActionKind(kind), model, version)},
                )

    def note_observation(self, name: str, values: Mapping[str, float | None]) -> None:
        """An observer's stored result, read by the policy's boundaries from the next window."""
        with self.lock:
            self.knowledge.note_observation(name, values)

    def describe_version(self, info: ModelVersion) -> None:
        """What the managed system says about one of its versions (quality, energy, the
        fingerprint of its training data): strategies read it to choose reuse or switch."""
        with self.lock:
            if info.model in self.knowledge.versions:
                self.knowledge.put_version(info)

    def _follow(self, row: dict[str, Any]) -> None:
        """Track the model and version the system reports as serving."""
        knowledge = self.knowledge
        model, version = row["model"], row["model_version"]
        if model == knowledge.active_model and version in (None, knowledge.active_version):
            return
        if model not in knowledge.versions:
            return
        if version is not None and knowledge.version_info(model, version) is None:
            knowledge.add_version(ModelVersion(model, version, created=self.clock()))
        if (model, version) != (knowledge.active_model, knowledge.active_version):
            knowledge.activate(model, version)
