"""HX-MLOps's sharing routes over Harmonia's registry (see `harmonia.compat.hxmlops`).

Uploads are multipart forms as HX-MLOps's clients send them, streamed into the artifact store
like Harmonia's own (`harmonia.server.uploads`); a dataset's two files
(``dataModelFile``, ``datasetFile``) are kept as one zip of ``dataModel`` and ``dataset``,
which is what HX-MLOps's ``GET /dataset/by_id`` answers. A model uploaded with status
``staging`` gets that alias; with ``production``, it is staged and promoted at once, which
needs ``admin`` on its domain and records the uploader as the approver.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from harmonia.bounded import DocumentTooComplex, load_json
from harmonia.compat.hxmlops.shapes import (
    DATA_TYPE,
    DatasetCatalogResponse,
    DatasetResponse,
    DataType,
    ModelCatalogResponse,
    ModelResponse,
    Status,
    dataset_response,
    model_response,
)
from harmonia.registry.artifacts import StoredObject
from harmonia.registry.metadata import VersionMetadata
from harmonia.server.api.deps import Caller
from harmonia.server.api.routes.catalog import CatalogDep, download
from harmonia.server.catalog import CatalogService
from harmonia.server.errors import Forbidden, Invalid
from harmonia.server.openapi import errors, text_reply
from harmonia.server.principals import Principal
from harmonia.server.schemas import field_errors
from harmonia.server.uploads import (
    BodyReader,
    MultipartForm,
    body_chunks,
    file_bytes,
    form_field,
    zipped_files,
)
from harmonia.store import NotFound
from harmonia.store.catalog import ArtifactVersion

router = APIRouter(prefix="/api/v1", tags=["HX-MLOps"])
HX_UPLOAD_PATH = r"^/api/v1/(model|dataset)$"
#: a dataset's file parts and their names in the zip it is kept as
DATASET_MEMBERS = {"dataModelFile": "dataModel", "datasetFile": "dataset"}

Identifier = Annotated[int, Path(ge=1, le=2**31 - 1)]
VersionQuery = Annotated[str, Query(max_length=64, description="a version, a label or latest")]
Filter = Annotated[str | None, Query(max_length=64)]


def _model_form(kind: str) -> dict[str, Any]:
    files = ["file"] if kind == "model" else list(DATASET_MEMBERS)
    fields = (
        ["name", "version", "status", "library", "libraryVersion", "domain", "tag"]
        if kind == "model"
        else ["name", "version", "dataType", "tag", "domain"]
    )
    properties: dict[str, Any] = {f: {"type": "string"} for f in fields}
    properties["parameters"] = {"type": "string", "description": "JSON object"}
    if kind == "model":
        properties["characteristics"] = {"type": "string", "description": "JSON object"}
    properties.update({f: {"type": "string", "format": "binary"} for f in files})
    schema = {"type": "object", "required": ["name", "version", *files], "properties": properties}
    return {
        "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}
    }


# -- models -------------------------------------------------------------------------------------
@router.post(
    "/model",
    response_model=ModelResponse,
    responses=errors(401, 403, 404, 409, 413, 422, 503),
    openapi_extra=_model_form("model"),
)
async def add_model(request: Request, caller: Caller, service: CatalogDep) -> dict[str, Any]:
    """HX-MLOps's upload of a model: the file and its metainfo (a form)."""
    found = await _upload(request, caller, service, "model")
    return model_response(found)


@router.get(
    "/model/by_id/{model_id}",
    response_class=StreamingResponse,
    responses={
        200: text_reply("application/octet-stream", "The model file", binary=True),
        **errors(401, 403, 404, 422, 503),
    },
)
async def get_model(
    model_id: Identifier, caller: Caller, service: CatalogDep, version: VersionQuery = "latest"
) -> StreamingResponse:
    """The model's file at ``version`` (a label, a number, an alias or ``latest``)."""
    found = await run_in_threadpool(_version, service, caller, "model", model_id, version)
    chunks = await run_in_threadpool(service.open, found)
    return download(found, chunks)


@router.get(
    "/model/{model_id}/data",
    response_model=ModelResponse,
    responses=errors(401, 403, 404, 422, 503),
)
def get_model_info(
    model_id: Identifier, caller: Caller, service: CatalogDep, version: VersionQuery = "latest"
) -> dict[str, Any]:
    """The model's metainfo at ``version``."""
    return model_response(_version(service, caller, "model", model_id, version))


@router.get(
    "/model_catalog",
    response_model=ModelCatalogResponse,
    responses=errors(401, 404, 422, 503),
)
def get_model_catalog(
    caller: Caller,
    service: CatalogDep,
    domain: Filter = None,
    tag: Filter = None,
    status: Annotated[
        str | None, Query(pattern="^(production|staging|development|training)$")
    ] = "production",
    name: Filter = None,
    version: Filter = None,
) -> dict[str, Any]:
    """The models the caller may read, by domain, tag, status (``production`` unless
    told), name and version; 404 when none match, as HX-MLOps answers."""
    found = _search(service, caller, "model", domain, tag, status, name, version)
    if not found:
        raise NotFound("No models found matching the filters")
    return {"models": [model_response(v) for v in found]}


@router.delete(
    "/model/{model_id}",
    response_model=ModelResponse,
    responses=errors(401, 403, 404, 409, 422, 503),
)
def delete_model(
    model_id: Identifier,
    caller: Caller,
    service: CatalogDep,
    version: Annotated[str, Query(max_length=64)],
) -> dict[str, Any]:
    """Delete one version of the model (``version`` is required, as in HX-MLOps)."""
    found = _version(service, caller, "model", model_id, version)
    service.delete(caller, found.domain, "model", found.name, found.version)
    return model_response(found)


# -- datasets -----------------------------------------------------------------------------------
@router.post(
    "/dataset",
    response_model=DatasetResponse,
    responses=errors(401, 403, 404, 409, 413, 422, 503),
    openapi_extra=_model_form("dataset"),
)
async def add_dataset(request: Request, caller: Caller, service: CatalogDep) -> dict[str, Any]:
    """HX-MLOps's upload of a dataset: its data model and data files, and metainfo. The
    domain is the one the caller's key writes to (the admin token names it: ``domain``)."""
    found = await _upload(request, caller, service, "dataset")
    return dataset_response(found)


@router.get(
    "/dataset/by_id/{dataset_id}",
    response_class=StreamingResponse,
    responses={
        200: text_reply("application/zip", "dataset and dataModel, zipped", binary=True),
        **errors(401, 403, 404, 422, 503),
    },
)
async def get_dataset(
    dataset_id: Identifier, caller: Caller, service: CatalogDep, version: VersionQuery = "latest"
) -> StreamingResponse:
    """The dataset's files at ``version``: a zip of ``dataset`` and ``dataModel``."""
    found = await run_in_threadpool(_version, service, caller, "dataset", dataset_id, version)
    chunks = await run_in_threadpool(service.open, found)
    reply = download(found, chunks)
    reply.headers["Content-Disposition"] = (
        f'attachment; filename="{found.name}_{found.label or found.version}_files.zip"'
    )
    return reply


@router.get(
    "/dataset/{dataset_id}/data",
    response_model=DatasetResponse,
    responses=errors(401, 403, 404, 422, 503),
)
def get_dataset_info(
    dataset_id: Identifier, caller: Caller, service: CatalogDep, version: VersionQuery = "latest"
) -> dict[str, Any]:
    return dataset_response(_version(service, caller, "dataset", dataset_id, version))


@router.get(
    "/dataset_catalog",
    response_model=DatasetCatalogResponse,
    responses=errors(401, 404, 422, 503),
)
def get_dataset_catalog(
    caller: Caller,
    service: CatalogDep,
    tag: Filter = None,
    dataType: Annotated[DataType | None, Query()] = None,
    name: Filter = None,
    version: Filter = None,
) -> dict[str, Any]:
    """The datasets the caller may read, by tag, data type, name and version."""
    found = _search(service, caller, "dataset", None, tag, None, name, version)
    out = [dataset_response(v) for v in found]
    if dataType is not None:
        out = [d for d in out if d["dataType"] == dataType.value]
    if not out:
        raise NotFound("No datasets found matching the filters")
    return {"datasets": out}


@router.delete(
    "/dataset/{dataset_id}",
    response_model=DatasetResponse,
    responses=errors(401, 403, 404, 409, 422, 503),
)
def delete_dataset(
    dataset_id: Identifier,
    caller: Caller,
    service: CatalogDep,
    version: Annotated[str, Query(max_length=64)],
) -> dict[str, Any]:
    found = _version(service, caller, "dataset", dataset_id, version)
    service.delete(caller, found.domain, "dataset", found.name, found.version)
    return dataset_response(found)


# -- what both kinds share ----------------------------------------------------------------------
def _version(
    service: CatalogService, caller: Principal, kind: str, artifact_id: int, version: str
) -> ArtifactVersion:
    artifact = service.store.artifact_by_id(artifact_id, kind)
    return service.version(caller, artifact.domain, kind, artifact.name, version)


def _search(
    service: CatalogService,
    caller: Principal,
    kind: str,
    domain: str | None,
    tag: str | None,
    status: str | None,
    name: str | None,
    version: str | None,
) -> list[ArtifactVersion]:
    """HX-MLOps's filters; its ``version`` matches a label, or else a number."""
    query: dict[str, Any] = {
        "readers": service.readers(caller),
        "kind": kind,
        "domain": domain,
        "tag": tag,
        "status": "development" if status == "training" else status,
        "name": name,
        "limit": 1000,
    }
    found = service.store.search_artifact_versions(**query, label=version)
    if not found and version is not None and version.isdecimal() and len(version) < 10:
        found = service.store.search_artifact_versions(**query, version=int(version))
    return found


async def _upload(
    request: Request, caller: Caller, service: CatalogService, kind: str
) -> ArtifactVersion:
    """Stream the form's file (a model's) or files (a dataset's, zipped) into the artifact
    store, then record the version with the form's metainfo."""
    if not caller.admin and not any(caller.allows(d, "write") for d in caller.scopes):
        raise Forbidden(
            f"uploading a {kind} needs scope 'write' on a domain; {caller.name} has none"
        )
    content_type = request.headers.get("content-type", "")
    reader = BodyReader(request)

    def upload() -> ArtifactVersion:
        form = MultipartForm(content_type, body_chunks(reader))
        catalog = service.catalog
        chunks = (
            file_bytes(form, "file") if kind == "model" else zipped_files(form, DATASET_MEMBERS)
        )
        stored = catalog.artifacts.put(catalog.new_key(kind), chunks, max_bytes=catalog.max_bytes)
        try:
            return _record(service, caller, kind, form, stored)
        except BaseException:
            catalog.artifacts.delete(stored.key)
            raise

    return await run_in_threadpool(upload)


def _record(
    service: CatalogService,
    caller: Principal,
    kind: str,
    form: MultipartForm,
    stored: StoredObject,
) -> ArtifactVersion:
    wanted = ["file"] if kind == "model" else list(DATASET_MEMBERS)
    missing = [f for f in wanted if f not in {p.field for p in form.files}]
    if missing:
        raise Invalid([{"field": f, "reason": "required: a file"} for f in missing])
    name = form_field(form, "name")
    assert name is not None
    domain = form.fields.get("domain") or _only_domain(caller)
    service.require(caller, domain, "write", f"{kind}.push", f"{kind}:{domain}/{name}")
    status = form.fields.get("status", "training") if kind == "model" else "training"
    if status not in Status._value2member_map_:
        raise Invalid([{"field": "status", "reason": "one of production, staging, training"}])
    if status == "production":
        service.require(caller, domain, "admin", f"{kind}.promote", f"{kind}:{domain}/{name}")
    characteristics = _json_field(form, "characteristics") if kind == "model" else {}
    if kind == "dataset":
        data_type = form.fields.get("dataType", "mixed")
        if data_type not in DataType._value2member_map_:
            raise Invalid([{"field": "dataType", "reason": "one of production, synthetic, mixed"}])
        characteristics[DATA_TYPE] = data_type
    tag = form.fields.get("tag") or None
    try:
        metadata = VersionMetadata(
            label=form.fields.get("version") or None,
            tags=[tag] if tag else [],
            library=form.fields.get("library") or None,
            library_version=form.fields.get("libraryVersion") or None,
            parameters=_json_field(form, "parameters"),
            characteristics=characteristics,
        )
    except ValidationError as error:
        names = {"label": "version", "tags": "tag", "library_version": "libraryVersion"}
        raise Invalid(
            [
                {**e, "field": names.get(e["field"].split("[")[0], e["field"])}
                for e in field_errors(error)
            ]
        ) from None
    media_type = "application/zip" if kind == "dataset" else form.files[0].content_type
    filename = form.files[0].filename if kind == "model" else f"{name}.zip"
    found = service.add(
        caller, domain, kind, name, stored, metadata, filename=filename, media_type=media_type
    )
    if status != "training":
        service.catalog.set_alias(
            domain, kind, name, "staging", found.version, by=caller.name, reason="HX-MLOps upload"
        )
    if status == "production":
        service.catalog.promote(
            domain,
            kind,
            name,
            approver=caller.name,
            note="uploaded through HX-MLOps with status production",
            version=found.version,
        )
    return service.store.artifact_version_by_id(found.id)


def _only_domain(caller: Principal) -> str:
    """The domain a key writes to, for a form that names none."""
    writable = [d for d in caller.scopes if caller.allows(d, "write")]
    if len(writable) != 1:
        raise Invalid(
            [{"field": "domain", "reason": "required: the domain to keep it in (Harmonia's)"}]
        )
    return writable[0]


def _json_field(form: MultipartForm, name: str) -> dict[str, Any]:
    text = form.fields.get(name)
    if text is None or not text.strip():
        return {}
    try:
        value = load_json(text)
    except (DocumentTooComplex, orjson.JSONDecodeError) as error:
        raise Invalid([{"field": name, "reason": f"not JSON: {error}"}]) from None
    if not isinstance(value, dict):
        raise Invalid([{"field": name, "reason": "a JSON object"}])
    return value
