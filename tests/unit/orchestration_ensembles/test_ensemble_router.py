"""Combining members' outputs, and running an ensemble under a deadline."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest

from harmonia.orchestration.ensembles import (
    EnsembleError,
    aggregate_predictions,
    run_ensemble,
)


def test_equal_weights_give_rohes_mean_and_a_missing_class_counts_as_zero() -> None:
    result = aggregate_predictions({"a": {"cat": 0.6, "dog": 0.4}, "b": {"cat": 1.0}})
    assert result.scores == pytest.approx({"cat": 0.8, "dog": 0.2})
    assert (result.label, result.confidence, result.members) == ("cat", 0.8, ["a", "b"])


def test_weights_favour_the_better_member_and_are_normalised_over_those_that_answered() -> None:
    outputs = {"good": {"cat": 0.2, "dog": 0.8}, "weak": {"cat": 0.9, "dog": 0.1}}
    result = aggregate_predictions(outputs, weights={"good": 3, "weak": 1, "absent": 10})
    assert result.label == "dog"
    assert result.scores == pytest.approx({"cat": (0.6 + 0.9) / 4, "dog": (2.4 + 0.1) / 4})


def test_ties_go_to_the_first_class_in_sorted_order() -> None:
    assert aggregate_predictions({"a": {"b": 0.5, "a": 0.5}}).label == "a"


def test_bad_outputs_and_weights_give_errors_naming_the_field() -> None:
    with pytest.raises(EnsembleError) as caught:
        aggregate_predictions(
            {"a": {"cat": -1.0}, "b": {"dog": float("nan")}, "c": {"cat": 1.0}},
            weights={"a": 1, "b": -2},
        )
    assert {issue.path for issue in caught.value.issues} == {
        "outputs.a.cat",
        "outputs.b.dog",
        "weights.b",
        "weights.c",
    }
    with pytest.raises(EnsembleError, match="sum to 0"):
        aggregate_predictions({"a": {"cat": 1.0}}, weights={"a": 0})


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """Set after the test, so a member blocked on it ends instead of outliving the test."""
    event = threading.Event()
    yield event
    event.set()


def blocked(event: threading.Event) -> Callable[[], dict[str, float]]:
    def call() -> dict[str, float]:
        event.wait(30)
        return {"slow": 1.0}

    return call


def test_a_member_past_the_deadline_is_left_out_and_reported(release: threading.Event) -> None:
    def broken() -> dict[str, float]:
        raise RuntimeError("model not loaded")

    run = run_ensemble(
        {"fast": lambda: {"cat": 0.9}, "slow": blocked(release), "broken": broken},
        deadline_ms=300,
    )
    assert run.completed == ["fast"] and run.late == ["slow"]
    assert run.failed == {"broken": "RuntimeError: model not loaded"}
    assert run.aggregate.label == "cat" and run.aggregate.members == ["fast"]
    assert not run.complete


def test_members_start_in_the_scheduled_order(release: threading.Event) -> None:
    started: list[str] = []

    def member(name: str) -> Callable[[], dict[str, float]]:
        def call() -> dict[str, float]:
            started.append(name)
            return {name: 1.0}

        return call

    calls = {name: member(name) for name in ("a", "b", "c")}
    run = run_ensemble(calls, deadline_ms=5000, order=["c", "a"], max_workers=1)
    assert started == ["c", "a", "b"] and run.completed == ["c", "a", "b"] and run.complete

    # one worker busy past the deadline: the members queued behind it never start
    calls = {"stuck": blocked(release), "next": member("next")}
    run = run_ensemble(calls, deadline_ms=200, order=["stuck", "next"], max_workers=1)
    assert run.late == ["stuck", "next"] and run.completed == [] and run.aggregate.label is None


def test_bad_run_arguments_give_errors_naming_the_field() -> None:
    with pytest.raises(EnsembleError) as caught:
        run_ensemble({"a": lambda: {}}, deadline_ms=0, order=["b"], max_workers=0)
    assert {i.path for i in caught.value.issues} == {"deadline_ms", "order.0", "max_workers"}
