"""HX-MLOps's payloads (``ModelResponse``, ``DatasetResponse`` and their catalogs) and how a
version of Harmonia's registry reads in them.

A model's ``version`` is its label when it was uploaded with one (HX-MLOps clients send
``1.0``), else its number; ``status`` is ``production`` or ``staging`` when that alias points
at it, else ``training``; ``characteristics`` carry the measured quality and energy too.
A dataset's ``dataType`` is kept among its characteristics.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from harmonia.store.catalog import ArtifactVersion

#: the characteristic a dataset's ``dataType`` is kept under
DATA_TYPE = "dataType"


class Status(StrEnum):
    PRODUCTION = "production"
    STAGING = "staging"
    TRAINING = "training"


class DataType(StrEnum):
    PRODUCTION = "production"
    SYNTHETIC = "synthetic"
    MIXED = "mixed"


class ModelResponse(BaseModel):
    modelIdentifier: int  # noqa: N815 (HX-MLOps's name on the wire)
    name: str
    version: str
    status: Status
    library: str
    libraryVersion: str  # noqa: N815 (HX-MLOps's name on the wire)
    domain: str
    tag: str
    parameters: dict[str, Any] = Field(default_factory=dict)
    characteristics: dict[str, Any] = Field(default_factory=dict)


class ModelCatalogResponse(BaseModel):
    models: list[ModelResponse]


class DatasetResponse(BaseModel):
    datasetIdentifier: int  # noqa: N815 (HX-MLOps's name on the wire)
    name: str
    version: str
    dataType: DataType  # noqa: N815 (HX-MLOps's name on the wire)
    tag: str
    parameters: dict[str, Any] = Field(default_factory=dict)


class DatasetCatalogResponse(BaseModel):
    datasets: list[DatasetResponse]


def hx_version(found: ArtifactVersion) -> str:
    return found.label or str(found.version)


def hx_status(found: ArtifactVersion) -> str:
    return "training" if found.status == "development" else found.status


def model_response(found: ArtifactVersion) -> dict[str, Any]:
    details = found.details
    return {
        "modelIdentifier": found.artifact_id,
        "name": found.name,
        "version": hx_version(found),
        "status": hx_status(found),
        "library": details.get("library") or "",
        "libraryVersion": details.get("library_version") or "",
        "domain": found.domain,
        "tag": found.tags[0] if found.tags else "",
        "parameters": details.get("parameters", {}),
        "characteristics": {
            **details.get("characteristics", {}),
            **details.get("quality", {}),
            **details.get("energy", {}),
        },
    }


def dataset_response(found: ArtifactVersion) -> dict[str, Any]:
    characteristics = found.details.get("characteristics", {})
    data_type = characteristics.get(DATA_TYPE)
    return {
        "datasetIdentifier": found.artifact_id,
        "name": found.name,
        "version": hx_version(found),
        "dataType": data_type if data_type in DataType._value2member_map_ else "mixed",
        "tag": found.tags[0] if found.tags else "",
        "parameters": found.details.get("parameters", {}),
    }
