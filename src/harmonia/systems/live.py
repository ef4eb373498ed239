"""What every reference system does the same way when it runs live as an sdk user: carry
out the server's actions (switch, retrain, reuse) on itself, describe its model versions to
the server (the fingerprint of each one's training data and what was measured when it was
made: the server's strategy weighs reuse and switches with it, as the replay lab's does),
and keep a record of what it did."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from harmonia.registry import ModelRegistry, RegisteredVersion
from harmonia.sdk import ActionMessage, Effector, Probe
from harmonia.systems.serving import Adaptable

T = TypeVar("T")


@dataclass
class LiveRun:
    """What a live run did: inputs served and the actions carried out."""

    served: int = 0
    applied: list[str] = field(default_factory=list)


def looped(items: Sequence[T], *, loop: bool, limit: int | None = None) -> Iterator[T]:
    """``items`` once, or round and round when ``loop`` (a live demo must not run dry when
    its recording ends: played again, its drift comes back and the system adapts again);
    at most ``limit`` of them.

    >>> list(looped("abc", loop=True, limit=7))
    ['a', 'b', 'c', 'a', 'b', 'c', 'a']
    >>> list(looped("abc", loop=False, limit=7))
    ['a', 'b', 'c']
    """
    stream: Iterator[T] = itertools.cycle(items) if loop and len(items) else iter(items)
    return stream if limit is None else itertools.islice(stream, limit)


def played(history: Any, served: int, offset: int = 0) -> Any:
    """What a system has observed of ``history`` (an array) once it served ``served`` inputs
    of it played round and round, where input ``i`` of a pass shows it ``history[: i + 1 +
    offset]``: the pass so far after the rest of the pass before, oldest first (all a
    retrain may learn from, in the order it was seen).

    >>> played(np.arange(6), 2, offset=2).tolist()
    [0, 1, 2, 3]
    >>> played(np.arange(6), 5, offset=2).tolist()  # the second pass's first input
    [3, 4, 5, 0, 1, 2]
    """
    per_pass = len(history) - offset
    if per_pass <= 0 or served <= per_pass:
        return history[: served + offset]
    at = served % per_pass
    if at == 0:
        return history
    return np.concatenate([history[at + offset :], history[: at + offset]])


def system_effector(
    system: Adaptable,
    observed: Callable[[], Any],
    run: LiveRun,
    describe: Callable[[RegisteredVersion], None] | None = None,
    retrained: Callable[[Any], str] = lambda done: f"in {done.seconds:.2f} s",
) -> Effector:
    """Handlers that carry out the server's actions on ``system``: a retrain learns from
    ``observed()`` (the recent inputs), its new version goes to ``describe`` and
    ``retrained(result)`` words what it did."""
    effector = Effector()

    def switch(action: ActionMessage) -> str:
        system.switch(action.model or system.active)
        run.applied.append(f"switch_model {system.active}")
        return f"serving {system.active}"

    def retrain(action: ActionMessage) -> str:
        done = system.retrain(action.model or system.active, observed(), reason=action.reason)
        version: RegisteredVersion = done.version
        if describe is not None:
            describe(version)
        run.applied.append(f"retrain {version.model} v{version.version}")
        return f"trained {version.model} v{version.version} {retrained(done)}"

    def reuse(action: ActionMessage) -> str:
        if action.model is None or action.version is None:
            raise ValueError("reuse_version needs a model and a version")
        system.reuse(action.model, action.version, reason=action.reason)
        run.applied.append(f"reuse_version {action.model} v{action.version}")
        return f"serving {action.model} v{action.version}"

    effector.on("switch_model", switch)
    effector.on("retrain", retrain)
    effector.on("reuse_version", reuse)
    return effector


def describe_version(probe: Probe, version: RegisteredVersion) -> None:
    """Describe one stored version (its scalar metadata; lists and tables stay local)."""
    details = {
        key: value
        for key, value in version.model_version.metadata.items()
        if isinstance(value, int | float | str | bool)
    }
    probe.describe_version(
        version.model, version.version, fingerprint=version.fingerprint, details=details
    )


def describe_registry(probe: Probe, registry: ModelRegistry, models: Iterable[str]) -> None:
    """Describe every stored version of ``models`` (at the start of a live run)."""
    for model in models:
        for version in registry.versions(model):
            describe_version(probe, version)
