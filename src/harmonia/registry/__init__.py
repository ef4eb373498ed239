"""The model registry: versioned model artifacts on disk, aliases, and an event history.

`ModelRegistry` keeps every version of every model under one root directory, with a
``current`` alias per model (the version in service; the others are archived) and an
append-only ``history.jsonl`` saying what was registered, promoted or measured, and when.
The replay lab forks one registry per approach; the server uses one in place.
"""

from harmonia.registry.errors import InvalidMetadata, InvalidName, RegistryError, VersionNotFound
from harmonia.registry.registry import CURRENT, ModelRegistry, RegisteredVersion

__all__ = [
    "CURRENT",
    "InvalidMetadata",
    "InvalidName",
    "ModelRegistry",
    "RegisteredVersion",
    "RegistryError",
    "VersionNotFound",
]
