"""What every reference system does the same way: serve one model at a time from the model
registry (the version its ``current`` alias names, kept loaded so serving reads no file),
and switch or reuse as the server's actions say. A system adds its data, training and
retraining on top.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from harmonia.core.knowledge import Knowledge
from harmonia.registry import CURRENT, ModelRegistry, RegisteredVersion

M = TypeVar("M")


class Retrained(Protocol):
    """What a system's retrain returns: the version it stored, the energy and time it took."""

    @property
    def version(self) -> RegisteredVersion: ...

    @property
    def joules(self) -> float: ...

    @property
    def seconds(self) -> float: ...


class Adaptable(Protocol):
    """What a managed system does when told to adapt: the one side that both the live sdk
    effector (`harmonia.systems.live.system_effector`) and the replay lab drive."""

    active: str

    def switch(self, kind: str) -> None: ...

    def reuse(self, kind: str, version: int, reason: str = "") -> None: ...

    def retrain(self, kind: str, recent: Any, reason: str = "") -> Retrained: ...


class ServedModels(Generic[M]):
    """Models of the registry, loaded with ``load``; ``active`` is the one in service."""

    def __init__(
        self, registry: ModelRegistry, models: Sequence[str], load: Callable[[Path], M]
    ) -> None:
        self.registry = registry
        self.models = list(models)
        self._load = load
        self._loaded: dict[tuple[str, int], M] = {}
        self._serving: M | None = None
        self._serving_version: int | None = None
        self.active = self.models[-1]

    def model(self, kind: str, version: int | None = None) -> M:
        """A loaded model: the given version, or the one the ``current`` alias names."""
        if version is None:
            current = self.registry.alias(kind, CURRENT)
            if current is None:
                raise LookupError(f"{kind} has no current version; train it first")
            version = current.version
        key = (kind, version)
        if key not in self._loaded:
            self._loaded[key] = self._load(self.registry.get(kind, version).path)
        return self._loaded[key]

    @property
    def serving_version(self) -> int:
        """The version of the model in service."""
        self._load_serving()
        assert self._serving_version is not None
        return self._serving_version

    def _load_serving(self) -> M:
        if self._serving is None:
            current = self.registry.alias(self.active, CURRENT)
            if current is None:
                raise LookupError(f"{self.active} has no current version; train it first")
            self._serving = self.model(self.active, current.version)
            self._serving_version = current.version
        return self._serving

    def knowledge(self, models: Sequence[str], active: str) -> Knowledge:
        """The engine's view of the stored versions, with ``active`` in service."""
        knowledge = Knowledge(models, active)
        for kind in models:
            for version in self.registry.versions(kind):
                knowledge.add_version(version.model_version)
            current = self.registry.alias(kind, CURRENT)
            if current is not None:
                knowledge.current_versions[kind] = current.version
        self.switch(active)
        return knowledge

    def _keep(self, kind: str, version: int, model: M) -> None:
        """A version just trained here: keep it loaded."""
        self._loaded[(kind, version)] = model

    # -- effector -----------------------------------------------------------------------
    def switch(self, kind: str) -> None:
        """Serve ``kind`` (at its current version) from the next call on."""
        if kind not in self.models:
            raise ValueError(f"unknown model {kind!r}; known: {', '.join(self.models)}")
        self.active = kind
        self._serving = None

    def reuse(self, kind: str, version: int, reason: str = "") -> None:
        """Serve an archived version again, loaded from its own artifacts."""
        self.registry.get(kind, version)  # raises if it does not exist
        self.registry.set_alias(kind, CURRENT, version, reason=reason or "reuse_version")
        self.switch(kind)
