"""Deadline-aware ordering of an ensemble's tasks: LLF and DREAM, as ROHE's orchestrator
defines them.

A task is one unit of an inference request (in ROHE, one modality of a multimodal query),
with the fastest and slowest execution time of the instances that could run it. Before
ordering, each task receives its share of the time left (ROHE's ``get_time_allocation``):
``share × remaining_ms`` (all of it without a share), capped at what is left and clamped to
its execution range, so that it is never given less than its fastest instance needs nor more
than its slowest can use.

- **LLF** (least laxity first): laxity = ``remaining_ms − allocated_ms``; least laxity runs
  first. No task is dropped; one with negative laxity is marked late.
- **DREAM**: a task whose fastest instance cannot finish in time is dropped early
  (``min_execution_ms > remaining_ms``); the rest run by decreasing score
  ``urgency × allocated_ms / remaining_ms + starvation_weight × starvation``, with
  ``urgency = min_execution_ms / (remaining_ms − min_execution_ms)`` (infinite when there
  is no slack). ROHE passes no starvation, so its order is the one with ``starvation=0``.

Both orders are stable: ties keep the caller's order. Both are pure: the caller measures
``remaining_ms`` with its clock and runs the tasks.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from harmonia.core.application import Name
from harmonia.core.errors import Issue
from harmonia.orchestration.ensembles._model import EnsembleError

Policy = Literal["llf", "dream"]

#: ROHE's weight of starvation in DREAM's score
DREAM_STARVATION_WEIGHT = 0.1


class EnsembleTask(BaseModel):
    """One task to schedule, with the execution range of the instances able to run it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    #: the fastest instance's execution time
    min_execution_ms: float = Field(ge=0.0, allow_inf_nan=False)
    #: the slowest instance's execution time
    max_execution_ms: float = Field(ge=0.0, allow_inf_nan=False)
    #: time already given to it (ROHE keeps it across rounds); None: from ``share``
    allocated_ms: float | None = Field(default=None, ge=0.0, allow_inf_nan=False)
    #: its proportion of the time left (ROHE's ``time_proportions``); None: all of it
    share: float | None = Field(default=None, gt=0.0, le=1.0)
    #: how long it has waited (rounds, or ms: the caller's unit); raises DREAM's score
    starvation: float = Field(default=0.0, ge=0.0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _range(self) -> EnsembleTask:
        if self.max_execution_ms < self.min_execution_ms:
            raise ValueError(
                f"max_execution_ms ({self.max_execution_ms:g}) is below "
                f"min_execution_ms ({self.min_execution_ms:g})"
            )
        return self


class ScheduledTask(BaseModel):
    """A task's place in a schedule and the figures that put it there."""

    model_config = ConfigDict(frozen=True)

    name: str
    allocated_ms: float
    #: ``remaining_ms − allocated_ms``
    laxity_ms: float
    #: LLF: −laxity; DREAM: its score (infinite without slack). Higher runs first.
    priority: float
    #: its allocation does not fit in the time left (LLF), or it has no slack (DREAM)
    late: bool
    dropped: bool = False


class Schedule(BaseModel):
    """Tasks to run, first first, and those dropped (DREAM) with why."""

    model_config = ConfigDict(frozen=True)

    policy: Policy
    remaining_ms: float
    order: list[ScheduledTask]
    dropped: list[ScheduledTask] = Field(default_factory=list)

    @property
    def names(self) -> list[str]:
        """The tasks to run, in order."""
        return [task.name for task in self.order]


def _coerce(
    tasks: Iterable[EnsembleTask | Mapping[str, Any]], remaining_ms: float
) -> list[EnsembleTask]:
    issues: list[Issue] = []
    parsed: list[EnsembleTask] = []
    seen: set[str] = set()
    for i, task in enumerate(tasks):
        try:
            valid = task if isinstance(task, EnsembleTask) else EnsembleTask.model_validate(task)
        except ValidationError as error:
            issues.extend(EnsembleError.from_validation(error, f"tasks.{i}").issues)
            continue
        if valid.name in seen:
            issues.append(Issue(f"tasks.{i}.name", f"{valid.name!r} appears twice"))
        seen.add(valid.name)
        parsed.append(valid)
    if not math.isfinite(remaining_ms):
        issues.append(Issue("remaining_ms", f"must be a finite number; got {remaining_ms}"))
    if issues:
        raise EnsembleError(issues)
    return parsed


def allocate_time(
    tasks: Iterable[EnsembleTask | Mapping[str, Any]], remaining_ms: float
) -> list[EnsembleTask]:
    """Give each task its time: its share of ``remaining_ms`` (all of it without a share),
    or what it already had, capped at ``remaining_ms``, then clamped to its execution range.

    >>> [t.allocated_ms for t in allocate_time(
    ...     [EnsembleTask(name="a", min_execution_ms=10, max_execution_ms=50, share=0.25),
    ...      EnsembleTask(name="b", min_execution_ms=30, max_execution_ms=90, share=0.1)], 100)]
    [25.0, 30.0]
    """
    allocated = []
    for task in _coerce(tasks, remaining_ms):
        if task.allocated_ms is not None:
            time = task.allocated_ms
        elif task.share is not None:
            time = task.share * remaining_ms
        else:
            time = remaining_ms
        time = min(time, remaining_ms)
        time = min(max(time, task.min_execution_ms), task.max_execution_ms)
        allocated.append(task.model_copy(update={"allocated_ms": time}))
    return allocated


def schedule_llf(
    tasks: Iterable[EnsembleTask | Mapping[str, Any]], remaining_ms: float
) -> Schedule:
    """Least laxity first: the task with the least time to spare beyond its allocation.

    >>> schedule_llf([{"name": "a", "min_execution_ms": 5, "max_execution_ms": 20},
    ...               {"name": "b", "min_execution_ms": 60, "max_execution_ms": 80}], 100).names
    ['b', 'a']
    """
    scheduled = []
    for task in allocate_time(tasks, remaining_ms):
        allocated = task.allocated_ms or 0.0
        laxity = remaining_ms - allocated
        scheduled.append(
            ScheduledTask(
                name=task.name,
                allocated_ms=allocated,
                laxity_ms=laxity,
                priority=-laxity,
                late=laxity < 0,
            )
        )
    scheduled.sort(key=lambda t: t.laxity_ms)
    return Schedule(policy="llf", remaining_ms=remaining_ms, order=scheduled)


def dream_score(
    task: EnsembleTask,
    remaining_ms: float,
    starvation_weight: float = DREAM_STARVATION_WEIGHT,
) -> float:
    """DREAM's score of an allocated task: urgency × its share of the time left, plus
    starvation. Higher runs first.

    >>> dream_score(EnsembleTask(name="t", min_execution_ms=50, max_execution_ms=80,
    ...                          allocated_ms=60), 100)
    0.6
    """
    minimum = task.min_execution_ms
    slack = remaining_ms - minimum
    urgency = math.inf if slack <= 0 else minimum / slack
    allocated = task.allocated_ms if task.allocated_ms is not None else minimum
    preference = allocated / remaining_ms if remaining_ms > 0 else 1.0
    # an infinite urgency of a task given no time is still the most urgent, not NaN
    weighted = urgency * preference if not (math.isinf(urgency) and preference == 0) else urgency
    return weighted + starvation_weight * task.starvation


def schedule_dream(
    tasks: Iterable[EnsembleTask | Mapping[str, Any]],
    remaining_ms: float,
    starvation_weight: float = DREAM_STARVATION_WEIGHT,
) -> Schedule:
    """DREAM: drop what cannot finish, run the rest by decreasing score.

    >>> s = schedule_dream([{"name": "a", "min_execution_ms": 10, "max_execution_ms": 20},
    ...                     {"name": "b", "min_execution_ms": 120, "max_execution_ms": 150}], 100)
    >>> s.names, [t.name for t in s.dropped]
    (['a'], ['b'])
    """
    if not (math.isfinite(starvation_weight) and starvation_weight >= 0):
        raise EnsembleError([Issue("starvation_weight", "must be a finite number ≥ 0")])
    kept: list[ScheduledTask] = []
    dropped: list[ScheduledTask] = []
    for task in allocate_time(tasks, remaining_ms):
        allocated = task.allocated_ms or 0.0
        score = dream_score(task, remaining_ms, starvation_weight)
        entry = ScheduledTask(
            name=task.name,
            allocated_ms=allocated,
            laxity_ms=remaining_ms - allocated,
            priority=score,
            late=remaining_ms - task.min_execution_ms <= 0,
            dropped=task.min_execution_ms > remaining_ms,
        )
        (dropped if entry.dropped else kept).append(entry)
    kept.sort(key=lambda t: -t.priority)
    return Schedule(policy="dream", remaining_ms=remaining_ms, order=kept, dropped=dropped)


def schedule(
    tasks: Iterable[EnsembleTask | Mapping[str, Any]], remaining_ms: float, policy: Policy
) -> Schedule:
    """Order ``tasks`` by ``policy`` (``llf`` or ``dream``)."""
    if policy == "llf":
        return schedule_llf(tasks, remaining_ms)
    if policy == "dream":
        return schedule_dream(tasks, remaining_ms)
    raise EnsembleError([Issue("policy", f"unknown policy {policy!r}; llf or dream")])
