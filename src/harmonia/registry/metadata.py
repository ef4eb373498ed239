"""What a caller says about a version it uploads: `VersionMetadata`, validated with errors
that name the field. The catalog keeps the label, tags and lineage in columns (they are
searched and joined on) and the rest as the version's ``details``.

Lineage names versions as ``[domain/]name@version``: ``trained_on`` a dataset version,
``retrained_from`` a model version (``@`` followed by a number, ``latest``, an alias or a
label); without a domain, the uploading version's own domain.

>>> meta = VersionMetadata(library="scikit-learn", quality={"r2": 0.91}, trained_on="flows@2")
>>> parse_ref(meta.trained_on, "vendor", "dataset")
('vendor', 'dataset', 'flows', '2')
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: a label (``1.0``, ``2024-06-rc1``) or a tag (``beta``, ``edge``)
LABEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$"
#: ``[domain/]name@ref``
REF_PATTERN = (
    r"^(?:([a-z0-9][a-z0-9_-]{0,63})/)?([A-Za-z0-9][A-Za-z0-9_.-]{0,63})@([A-Za-z0-9_.+-]{1,64})$"
)
_REF = re.compile(REF_PATTERN)

Label = Annotated[str, Field(pattern=LABEL_PATTERN)]
Ref = Annotated[str, Field(pattern=REF_PATTERN)]
Finite = Annotated[float, Field(allow_inf_nan=False)]


class VersionMetadata(BaseModel):
    """The metadata of a version of a model or dataset."""

    model_config = ConfigDict(extra="forbid")

    #: a human label, unique within the artifact (HX-MLOps's ``version``: ``1.0``)
    label: Label | None = None
    tags: list[Label] = Field(default_factory=list, max_length=32)
    #: the library that reads the artifact, and its version (``scikit-learn``, ``1.5.0``)
    library: str | None = Field(default=None, max_length=128)
    library_version: str | None = Field(default=None, max_length=64)
    #: hyperparameters, or how a dataset was made
    parameters: dict[str, Any] = Field(default_factory=dict)
    #: what the artifact is (input shape, classes, rows, columns...)
    characteristics: dict[str, Any] = Field(default_factory=dict)
    #: measured quality (``r2``, ``accuracy``)
    quality: dict[str, Finite] = Field(default_factory=dict)
    #: measured energy and cost figures (``energy_j_per_inference``)
    energy: dict[str, Finite] = Field(default_factory=dict)
    #: a dataset's schema (columns and their types), or the input a model expects
    data_schema: dict[str, Any] | None = None
    #: quantile sketch of the training data (`harmonia.core.knowledge.fingerprint`)
    fingerprint: list[Finite] = Field(default_factory=list, max_length=1024)
    #: what it was trained on, as the trainer tells it (rows, source, seed)
    training: dict[str, Any] = Field(default_factory=dict)
    trained_on: Ref | None = None
    retrained_from: Ref | None = None

    @field_validator("tags")
    @classmethod
    def _distinct(cls, tags: list[str]) -> list[str]:
        return sorted(set(tags))

    def details(self) -> dict[str, Any]:
        """What the catalog keeps as the version's ``details`` (the rest has columns)."""
        return self.model_dump(
            mode="json", exclude={"label", "tags", "trained_on", "retrained_from"}
        )


def parse_ref(text: str, domain: str, kind: str) -> tuple[str, str, str, str]:
    """``(domain, kind, name, ref)`` of a lineage reference ``[domain/]name@ref``."""
    match = _REF.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not [domain/]name@version")
    owner, name, ref = match.groups()
    return owner or domain, kind, name, ref
