"""Executing a chosen ensemble under a deadline, and combining its members' outputs.

Each member answers with scores per class (confidences). The ensemble's answer is their
weighted mean per class — ROHE sums members' confidences and divides by their number; a
weight per member (its accuracy, its utility) lets a better member count more. Members that
miss the deadline or fail are left out of the mean and reported, so a slow member degrades
the answer instead of delaying it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait

from pydantic import BaseModel, ConfigDict, Field

from harmonia.core.errors import Issue
from harmonia.orchestration.ensembles._model import EnsembleError

#: what a member returns: a score (confidence) per class
Prediction = Mapping[str, float]


class Aggregate(BaseModel):
    """The ensemble's answer: the weighted mean score per class and the best class."""

    model_config = ConfigDict(frozen=True)

    #: weighted mean score per class, over the members that answered
    scores: dict[str, float] = Field(default_factory=dict)
    #: the class with the highest score (ties: the first in sorted order); None: no answer
    label: str | None = None
    #: the label's score
    confidence: float = 0.0
    #: members whose outputs were combined
    members: list[str] = Field(default_factory=list)


def aggregate_predictions(
    outputs: Mapping[str, Prediction], weights: Mapping[str, float] | None = None
) -> Aggregate:
    """Combine members' scores per class into one answer, weighted by member.

    A class a member did not score counts as 0 for it. Weights are normalised over the
    members that answered, so a missing member does not shrink the scores.

    >>> result = aggregate_predictions(
    ...     {"a": {"cat": 0.9, "dog": 0.1}, "b": {"cat": 0.2, "dog": 0.8}},
    ...     weights={"a": 3, "b": 1})
    >>> result.label, round(result.confidence, 3), round(result.scores["dog"], 3)
    ('cat', 0.725, 0.275)
    >>> aggregate_predictions({}).label is None
    True
    """
    issues: list[Issue] = []
    for member, prediction in outputs.items():
        for cls, score in prediction.items():
            if not (isinstance(score, int | float) and math.isfinite(score) and score >= 0):
                issues.append(Issue(f"outputs.{member}.{cls}", f"{score!r} is not a score ≥ 0"))
    if weights is not None:
        for member, weight in weights.items():
            if not (isinstance(weight, int | float) and math.isfinite(weight) and weight >= 0):
                issues.append(Issue(f"weights.{member}", f"{weight!r} is not a weight ≥ 0"))
        issues.extend(
            Issue(f"weights.{member}", "no weight for a member that answered")
            for member in outputs
            if member not in weights
        )
    if issues:
        raise EnsembleError(issues)
    if not outputs:
        return Aggregate()
    member_weights = {m: 1.0 if weights is None else float(weights[m]) for m in outputs}
    total = math.fsum(member_weights.values())
    if total <= 0:
        raise EnsembleError([Issue("weights", "the answering members' weights sum to 0")])
    classes = sorted({cls for prediction in outputs.values() for cls in prediction})
    scores = {
        cls: math.fsum(member_weights[m] * p.get(cls, 0.0) for m, p in outputs.items()) / total
        for cls in classes
    }
    # max keeps the first of equal scores: ties go to the first class in sorted order
    label = max(classes, key=scores.__getitem__) if classes else None
    return Aggregate(
        scores=scores,
        label=label,
        confidence=scores[label] if label is not None else 0.0,
        members=list(outputs),
    )


class EnsembleRun(BaseModel):
    """What a deadline-bounded run of an ensemble gave, and what it could not wait for."""

    model_config = ConfigDict(frozen=True)

    aggregate: Aggregate
    #: members that answered in time, in the order they were started
    completed: list[str]
    #: members still running at the deadline (their threads are left to finish)
    late: list[str]
    #: members that raised: the error's type and message
    failed: dict[str, str]
    elapsed_ms: float
    #: every member answered before the deadline
    complete: bool


def run_ensemble(
    calls: Mapping[str, Callable[[], Prediction]],
    deadline_ms: float,
    *,
    weights: Mapping[str, float] | None = None,
    order: Sequence[str] | None = None,
    max_workers: int | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> EnsembleRun:
    """Call the members in parallel, wait at most ``deadline_ms``, combine what came back.

    ``order`` (e.g. an LLF or DREAM schedule's names) decides which members start first when
    ``max_workers`` is below their number; members not in it start last. A late member
    cannot be stopped from another thread: it keeps running in the background and its result
    is discarded, so members should honour their own timeouts. ``clock`` (seconds) is
    injected so that tests and replays control time.

    >>> run = run_ensemble({"a": lambda: {"cat": 1.0}, "b": lambda: {"dog": 1.0}},
    ...                    deadline_ms=1000, weights={"a": 2, "b": 1})
    >>> run.aggregate.label, run.completed, run.complete
    ('cat', ['a', 'b'], True)
    """
    issues = []
    if not (math.isfinite(deadline_ms) and deadline_ms > 0):
        issues.append(Issue("deadline_ms", f"must be a finite number > 0; got {deadline_ms}"))
    if max_workers is not None and max_workers < 1:
        issues.append(Issue("max_workers", "must be ≥ 1"))
    if order is not None:
        issues.extend(
            Issue(f"order.{i}", f"{name!r} is not a member")
            for i, name in enumerate(order)
            if name not in calls
        )
    if issues:
        raise EnsembleError(issues)
    ranked = [name for name in (order or []) if name in calls]
    names = ranked + [name for name in calls if name not in ranked]
    start = clock()
    completed: list[str] = []
    failed: dict[str, str] = {}
    outputs: dict[str, Prediction] = {}
    if not names:
        return EnsembleRun(
            aggregate=Aggregate(), completed=[], late=[], failed={}, elapsed_ms=0.0, complete=True
        )
    pool = ThreadPoolExecutor(max_workers=max_workers or len(names))
    try:
        futures: dict[Future[Prediction], str] = {pool.submit(calls[n]): n for n in names}
        pending = set(futures)
        deadline = start + deadline_ms / 1000.0
        while pending:
            left = deadline - clock()
            if left <= 0:
                break
            _, pending = wait(pending, timeout=left, return_when=FIRST_EXCEPTION)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    elapsed_ms = (clock() - start) * 1000.0
    late = []
    for future, name in futures.items():
        if future in pending or not future.done() or future.cancelled():
            late.append(name)
        elif (error := future.exception()) is not None:
            failed[name] = f"{type(error).__name__}: {error}"
        else:
            outputs[name] = future.result()
            completed.append(name)
    return EnsembleRun(
        aggregate=aggregate_predictions(outputs, weights),
        completed=completed,
        late=late,
        failed=failed,
        elapsed_ms=elapsed_ms,
        complete=not late and not failed,
    )
