"""What every reference system does the same way when it runs live as an sdk user: carry
out the server's actions (switch, retrain, reuse) on itself, describe its model versions to
the server (the fingerprint of each one's training data and what was measured when it was
made: the server's strategy weighs reuse and switches with it, as the replay lab's does),
and keep a record of what it did."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from harmonia.registry import ModelRegistry, RegisteredVersion
from harmonia.sdk import ActionMessage, Effector, Probe
from harmonia.systems.serving import Adaptable


@dataclass
class LiveRun:
    """What a live run did: inputs served and the actions carried out."""

    served: int = 0
    applied: list[str] = field(default_factory=list)


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
