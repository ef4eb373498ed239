"""LLF and DREAM order an ensemble's tasks as ROHE's orchestrator does, on cases worked by hand."""

from __future__ import annotations

import math

import pytest

from harmonia.orchestration.ensembles import (
    EnsembleError,
    EnsembleTask,
    allocate_time,
    dream_score,
    schedule,
    schedule_dream,
    schedule_llf,
)


def task(name: str, low: float, high: float, **extra: float) -> EnsembleTask:
    return EnsembleTask(name=name, min_execution_ms=low, max_execution_ms=high, **extra)


def test_time_is_allocated_by_share_capped_and_clamped_to_the_execution_range() -> None:
    tasks = [
        task("share", 10, 50, share=0.3),  # 30 of 100
        task("floor", 40, 90, share=0.1),  # 10 → raised to its fastest, 40
        task("ceiling", 5, 20),  # all 100 → its slowest, 20
        task("kept", 5, 90, allocated_ms=60),  # already given 60: kept
        task("capped", 5, 200, allocated_ms=150),  # more than is left → 100
    ]
    allocated = {t.name: t.allocated_ms for t in allocate_time(tasks, 100)}
    assert allocated == {"share": 30, "floor": 40, "ceiling": 20, "kept": 60, "capped": 100}


def test_llf_runs_the_least_laxity_first() -> None:
    # allocations 20, 60, 40 of 100 ms: laxities 80, 40, 60
    tasks = [task("a", 20, 20), task("b", 60, 60), task("c", 40, 40)]
    result = schedule_llf(tasks, 100)
    assert result.names == ["b", "c", "a"]
    assert [t.laxity_ms for t in result.order] == [40, 60, 80]
    assert result.dropped == [] and not any(t.late for t in result.order)


def test_llf_keeps_late_tasks_and_marks_them() -> None:
    # 'slow' needs at least 120 ms of the 100 left: laxity −20, first and late; nothing dropped
    result = schedule_llf([task("fast", 10, 10), task("slow", 120, 150)], 100)
    assert result.names == ["slow", "fast"]
    assert [(t.laxity_ms, t.late) for t in result.order] == [(-20, True), (90, False)]


def test_llf_breaks_ties_in_the_callers_order() -> None:
    tasks = [task(name, 30, 30) for name in ("z", "a", "m")]
    assert schedule_llf(tasks, 100).names == ["z", "a", "m"]


def test_dream_drops_what_cannot_finish_and_orders_the_rest_by_score() -> None:
    tasks = [
        task("a", 10, 20),  # allocated 20: urgency 10/90, score 0.111 × 0.2 = 0.0222
        task("b", 50, 60),  # allocated 60: urgency 50/50 = 1, score 1 × 0.6 = 0.6
        task("c", 120, 150),  # fastest 120 ms > 100 left: dropped early
        task("d", 30, 30),  # allocated 30: urgency 30/70, score 0.4286 × 0.3 = 0.1286
    ]
    result = schedule_dream(tasks, 100)
    assert result.names == ["b", "d", "a"]
    assert [t.name for t in result.dropped] == ["c"] and result.dropped[0].dropped
    scores = [t.priority for t in result.order]
    assert scores == pytest.approx([0.6, 30 / 70 * 0.3, 10 / 90 * 0.2])


def test_dream_puts_a_task_without_slack_first_and_starvation_lifts_a_task() -> None:
    exact_fit = task("exact", 100, 100)  # no slack: infinite urgency, but not dropped
    result = schedule_dream([task("a", 10, 20), exact_fit], 100)
    assert result.names == ["exact", "a"] and math.isinf(result.order[0].priority)
    assert result.order[0].late

    waiting = [task("a", 10, 20), task("b", 50, 60, starvation=6)]
    assert schedule_dream(waiting, 100).names == ["b", "a"]
    waiting = [task("a", 10, 20, starvation=6), task("b", 50, 60)]
    # a: 0.0222 + 0.1 × 6 = 0.622 > b: 0.6
    assert schedule_dream(waiting, 100).names == ["a", "b"]
    assert schedule_dream(waiting, 100, starvation_weight=0).names == ["b", "a"]


def test_dream_score_matches_its_definition() -> None:
    allocated = task("t", 25, 80, allocated_ms=40)
    assert dream_score(allocated, 100) == pytest.approx(25 / 75 * 0.4)
    assert dream_score(allocated, 100, starvation_weight=1) == pytest.approx(25 / 75 * 0.4)
    assert dream_score(task("t", 25, 80, allocated_ms=40, starvation=2), 100) == pytest.approx(
        25 / 75 * 0.4 + 0.2
    )


def test_schedule_dispatches_by_policy() -> None:
    tasks = [task("a", 10, 20), task("b", 50, 60)]
    assert schedule(tasks, 100, "llf") == schedule_llf(tasks, 100)
    assert schedule(tasks, 100, "dream") == schedule_dream(tasks, 100)
    with pytest.raises(EnsembleError, match="policy"):
        schedule(tasks, 100, "edf")  # type: ignore[arg-type]


def test_bad_tasks_give_errors_naming_the_field() -> None:
    with pytest.raises(EnsembleError) as caught:
        schedule_llf(
            [
                {"name": "a", "min_execution_ms": 10, "max_execution_ms": 20},
                {"name": "b", "min_execution_ms": 30, "max_execution_ms": 20},
                {"name": "c", "min_execution_ms": -1, "max_execution_ms": 20},
                {"name": "a", "min_execution_ms": 1, "max_execution_ms": 2},
                {"name": "d", "min_execution_ms": 1, "max_execution_ms": 2, "share": 2},
            ],
            math.nan,
        )
    paths = {issue.path for issue in caught.value.issues}
    assert paths == {
        "tasks.1",
        "tasks.2.min_execution_ms",
        "tasks.3.name",
        "tasks.4.share",
        "remaining_ms",
    }
    with pytest.raises(EnsembleError, match="starvation_weight"):
        schedule_dream([task("a", 1, 2)], 10, starvation_weight=-1)
