"""Errors of the model registry: each one names the model, version or value at fault."""

from __future__ import annotations

from collections.abc import Sequence

from harmonia.core.errors import HarmoniaError


class RegistryError(HarmoniaError):
    """Base class of the registry's errors (also raised for a damaged or misused tree)."""


class VersionNotFound(RegistryError, LookupError):
    """A model has no such version; ``known`` lists the versions it does have."""

    def __init__(self, model: str, version: int, known: Sequence[int]) -> None:
        self.model = model
        self.version = version
        self.known = list(known)
        listed = ", ".join(str(v) for v in self.known) or "none"
        super().__init__(f"model {model!r} has no version {version}; known versions: {listed}")


class InvalidName(RegistryError, ValueError):
    """A model or alias name is unsafe to use as a directory or key; nothing was touched."""

    def __init__(self, kind: str, value: object, pattern: str) -> None:
        self.kind = kind
        self.value = value
        super().__init__(f"invalid {kind} name {value!r}: it must match {pattern}")


class InvalidMetadata(RegistryError, ValueError):
    """Metrics, params or training data that cannot be stored as strict JSON."""


class ArtifactNotFound(RegistryError, LookupError):
    """An artifact store holds no object under a key (deleted, or never written)."""

    def __init__(self, location: str) -> None:
        self.location = location
        super().__init__(f"no artifact at {location}")


class ArtifactTooLarge(RegistryError):
    """An upload passed its size limit; nothing of it was kept."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"the artifact is over the limit of {limit} bytes; nothing was stored")


class ChecksumMismatch(RegistryError):
    """The bytes read back are not the bytes stored: their sha256 differs from the one
    computed at upload. The artifact is damaged (or was altered) where it is stored."""

    def __init__(self, what: str, expected: str, actual: str) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(f"{what}: sha256 {actual} read back, {expected} stored: damaged artifact")
