"""A model version: one numbered version of one model, as Harmonia knows it.

The engine's knowledge, the store (what a managed system described over the wire) and the
registry (which adds where the artifacts are) all speak of a version with this one type.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ModelVersion:
    """One version of a model, with the fingerprint of the data it was trained on.

    ``metadata`` is what was measured or set when it was made (quality, energy per
    inference, hyperparameters); strategies weigh reuse and switches with it. Over the wire
    it is the ``details`` of a described version. ``service`` is the service of an
    application that serves the model (``"default"`` for a single-service one).

    >>> version = ModelVersion("lstm", 2, fingerprint=(0.0, 1.0), metadata={"r2": 0.9})
    >>> version.created, version.service, version.metadata["r2"]
    (0.0, 'default', 0.9)
    """

    model: str
    version: int
    created: float = 0.0
    #: quantile sketch of the training data (see `harmonia.core.knowledge.fingerprint`)
    fingerprint: tuple[float, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    service: str = "default"
