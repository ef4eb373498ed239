"""The model registry: versioned model artifacts on disk, aliases, and an event history.

`ModelRegistry` keeps every version of every model under one root directory, with a
``current`` alias per model (the version in service; the others are archived) and an
append-only ``history.jsonl`` saying what was registered, promoted or measured, and when.
The replay lab forks one registry per approach; the server uses one in place.

The registry of models and datasets per domain that the server exposes is
`harmonia.registry.catalog.Catalog` (metadata in the SQL store, bytes in an
`harmonia.registry.artifacts.ArtifactStore` chosen by URI scheme); a `ModelRegistry` backed
by it, for live systems, is `harmonia.registry.remote.ServerRegistry`. Those need the
``server`` extra (SQLAlchemy) or a server to talk to, so they are imported from their modules.
"""

from harmonia.registry.errors import (
    ArtifactNotFound,
    ArtifactTooLarge,
    ChecksumMismatch,
    InvalidMetadata,
    InvalidName,
    RegistryError,
    VersionNotFound,
)
from harmonia.registry.registry import CURRENT, ModelRegistry, RegisteredVersion

__all__ = [
    "CURRENT",
    "ArtifactNotFound",
    "ArtifactTooLarge",
    "ChecksumMismatch",
    "InvalidMetadata",
    "InvalidName",
    "ModelRegistry",
    "RegisteredVersion",
    "RegistryError",
    "VersionNotFound",
]
