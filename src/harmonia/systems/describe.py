"""What a reference system tells the server about its model versions, through its probe:
the fingerprint of each version's training data and what was measured when it was made
(held-out quality, energy per inference, training cost, the condition it was tuned for).
The server's strategy weighs reuse and switches with it, as the replay lab's does."""

from __future__ import annotations

from collections.abc import Iterable

from harmonia.registry import ModelRegistry, ModelVersion
from harmonia.sdk import Probe


def describe_version(probe: Probe, version: ModelVersion) -> None:
    """Describe one stored version (its scalar metadata; lists and tables stay local)."""
    details = {
        key: value
        for key, value in version.info().metadata.items()
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
