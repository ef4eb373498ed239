"""The live loop's batch path decides exactly as feeding the samples one by one did: the same
windows (every signal), the same actions, the same model followed — with switches inside a
batch, batches that end mid-window, a policy made smaller mid-window, and time windows."""

from __future__ import annotations

import math
import random
from typing import Any, ClassVar

import pytest

from harmonia.core.actions import Action, ActionKind
from harmonia.core.policy import Policy
from harmonia.core.strategies.base import Planned, Situation, Trigger, planned
from harmonia.core.telemetry import TelemetrySample
from harmonia.server.loop import LiveLoop
from support import policy

MODELS = ["linear", "svm", "lstm"]


def sample_by_sample(loop: LiveLoop, rows: list[dict[str, Any]]) -> list[Action]:
    """The loop's ingestion as it was before its batch path: a sample object, observe and
    (once the window can be due, or every ``lookahead`` samples) a step per sample."""
    actions: list[Action] = []
    knowledge, step, clock = loop.knowledge, loop.engine.step, loop.clock
    size = loop.engine.policy.window.samples
    every = getattr(loop.engine.strategy, "lookahead", None)
    serving = None
    for row in rows:
        if (row["model"], row["model_version"]) != serving:
            loop._follow(row)
            serving = (row["model"], row["model_version"])
        knowledge.observe(TelemetrySample.trusted(row))
        filled = len(knowledge.window)
        if size is not None and filled < size and not (every and filled % every == 0):
            continue
        decided = [a for a in step(knowledge, clock()) if loop._new(a)]
        if decided:
            actions.extend(decided)
            serving = None
    return actions


def rows_of(count: int, seed: int) -> list[dict[str, Any]]:
    """Samples with switches of model and version every so often, bad stretches that fire
    boundaries, and an occasional missing value."""
    rng = random.Random(seed)
    model, version = "lstm", 1
    out = []
    for i in range(count):
        if rng.random() < 0.01:
            model = rng.choice(MODELS)
            version = rng.choice([None, 1, 2])
        target = rng.gauss(100, 20)
        bad = (i // 150) % 3 == 2
        out.append(
            {
                "app": "a",
                "stage": "main",
                "service": "default",
                "instance": "i",
                "trace_id": None,
                "model": model,
                "model_version": version,
                "ts": 1000.0 + i,
                "latency_ms": rng.uniform(1, 200 if bad else 5),
                "energy_j": None if rng.random() < 0.02 else rng.uniform(0.001, 0.01),
                "energy_source": "estimate",
                "prediction": target + rng.gauss(0, 60 if bad else 2),
                "target": target,
                "drift_value": target + (50 if bad else 0),
                "metrics": {"error": float(bad)},
                "input_summary": None,
            }
        )
    return out


def same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


class LooksAhead:
    """Between windows, moves on to the next model whenever the latest inputs look bad."""

    name: ClassVar[str] = "looks-ahead"
    detectors: ClassVar[tuple[str, ...]] = ()
    lookahead = 7

    def decide(self, situation: Situation) -> list[Planned]:
        return []

    def anticipate(self, situation: Situation) -> list[Planned]:
        if situation.summary.drift_values.mean() < 130:
            return []
        following = MODELS[(MODELS.index(situation.active_model) + 1) % len(MODELS)]
        return [planned(ActionKind.SWITCH_MODEL, "bad", Trigger("ahead", {}), model=following)]


def fed(
    the_policy: Policy, batches: list[int], *, batch_path: bool, looks_ahead: bool = False
) -> tuple[Any, ...]:
    clock = iter(float(t) for t in range(1000, 10**6))
    loop = LiveLoop("a", the_policy, clock=lambda: next(clock))
    if looks_ahead:
        loop.engine.strategy = LooksAhead()
    rows = rows_of(sum(batches), seed=7)
    actions: list[Action] = []
    windows = []
    at = 0
    for size in batches:
        batch = rows[at : at + size]
        at += size
        if batch_path:
            done = loop.ingest(batch)
            actions += done.actions
            windows += done.windows
        else:
            before = loop.knowledge.windows_closed
            actions += sample_by_sample(loop, batch)
            new = loop.knowledge.windows_closed - before
            windows += list(loop.knowledge.summaries)[len(loop.knowledge.summaries) - new :]
    knowledge = loop.knowledge
    return actions, windows, (knowledge.active_model, knowledge.active_version), knowledge


@pytest.mark.parametrize(
    ("fields", "batches"),
    [
        ({"window": 50}, [1000, 1000, 7, 1, 993]),
        ({"window": 200}, [1000, 333, 1, 1666]),
        ({"window": 50, "cooldown": 0}, [3, 997, 1000]),
        ({"window": "5 seconds"}, [120, 80]),
    ],
)
@pytest.mark.parametrize("looks_ahead", [False, True])
def test_a_batch_decides_as_sample_by_sample(
    fields: dict[str, Any], batches: list[int], looks_ahead: bool
) -> None:
    """With a strategy that looks ahead too: it is asked at the same samples, and the
    windows it closes early are the same."""
    boundaries = [
        {"when": "p95(latency_ms) > 50", "then": "switch_model"},
        {"when": "r2 < 0.5", "then": "switch_model"},
    ]
    the_policy = policy(boundaries=boundaries, **fields)
    old_actions, old_windows, old_serving, old = fed(
        the_policy, batches, batch_path=False, looks_ahead=looks_ahead
    )
    new_actions, new_windows, new_serving, new = fed(
        the_policy, batches, batch_path=True, looks_ahead=looks_ahead
    )
    assert old_windows, "the data closes windows"
    if looks_ahead and the_policy.window.samples:
        assert any(a.trigger == "ahead" for a in new_actions), "the strategy looked ahead"
    assert len(new_windows) == len(old_windows)
    for a, b in zip(old_windows, new_windows, strict=True):
        assert (a.start, a.end, a.model, a.version, a.count) == (
            b.start,
            b.end,
            b.model,
            b.version,
            b.count,
        )
        assert a.signals.keys() == b.signals.keys()
        assert all(same(a.signals[k], b.signals[k]) for k in a.signals)
        assert a.drift_details == b.drift_details
    assert [a.__dict__ for a in new_actions] == [a.__dict__ for a in old_actions]
    assert new_serving == old_serving
    assert [s.__dict__ for s in new.window] == [s.__dict__ for s in old.window]
    assert new.window_started == old.window_started
    assert new.profiles == old.profiles


def test_a_smaller_policy_mid_window_closes_a_window_a_sample() -> None:
    """A window that holds more samples than the new policy's window closes after every
    sample, each taking the new size, as before."""
    rows = rows_of(140, seed=3)
    results = []
    for batch_path in (False, True):
        loop = LiveLoop("a", policy(window=100), clock=lambda: 0.0)
        loop.ingest(rows[:90]) if batch_path else sample_by_sample(loop, rows[:90])
        loop.replace_policy(policy(window=30))
        if batch_path:
            windows = loop.ingest(rows[90:]).windows
        else:
            before = loop.knowledge.windows_closed
            sample_by_sample(loop, rows[90:])
            windows = list(loop.knowledge.summaries)[before - loop.knowledge.windows_closed :]
        results.append([(w.start, w.end, w.count) for w in windows])
    assert results[0] == results[1]
    assert results[1][0] == (1000.0, 1029.0, 30)


def test_the_monitors_quick_paths_give_what_the_plain_ones_gave() -> None:
    """`split_at_switches` and `regression_quality` skip their per-sample Python when no
    switch (or no missing value) is in the window; the results are the same objects and
    the same numbers, to the bit."""
    import numpy as np

    from harmonia.core.monitor import r2_and_mae, regression_quality, split_at_switches

    def plain_split(samples: list[TelemetrySample]) -> list[list[TelemetrySample]]:
        parts: list[list[TelemetrySample]] = []
        for s in samples:
            if parts and (parts[-1][-1].model, parts[-1][-1].model_version) == (
                s.model,
                s.model_version,
            ):
                parts[-1].append(s)
            else:
                parts.append([s])
        return parts

    def plain_quality(samples: list[TelemetrySample]) -> tuple[float, float]:
        pairs = [(s.prediction, s.target) for s in samples]
        kept = [p for p in pairs if p[0] is not None and p[1] is not None]
        both = np.asarray(kept, dtype=float).reshape(-1, 2)
        return r2_and_mae(both[:, 0], both[:, 1])

    rows = rows_of(3000, seed=11)
    for row in rows[5::13]:
        row["prediction"] = None
    gappy = [TelemetrySample.trusted(r) for r in rows]
    full = [TelemetrySample.trusted(r) for r in rows_of(3000, seed=12)]
    assert split_at_switches([]) == []
    for at in range(0, 3000, 100):
        for window in (gappy[at : at + 100], full[at : at + 100], full[at : at + 37]):
            assert [list(map(id, p)) for p in split_at_switches(window)] == [
                list(map(id, p)) for p in plain_split(window)
            ]
            got, want = regression_quality(window), plain_quality(window)
            assert all(same(g, w) for g, w in zip(got, want, strict=True))
