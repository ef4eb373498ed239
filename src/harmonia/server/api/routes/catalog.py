"""The registry of models and datasets per domain: uploads and downloads (streamed; the
download carries its sha256 in ``X-Checksum-Sha256``), versions, ``latest``, aliases with
their history, promotions with their approval, grants to other domains, energy from training
to serving, and a search over everything the caller may read.

``{kinds}`` is ``models`` or ``datasets``; ``{ref}`` is a version number, ``latest``, an
alias (``production``) or a label. Every route needs a domain key or the admin token; see
`harmonia.server.catalog` for which scope each needs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from harmonia.bounded import DocumentTooComplex, load_json
from harmonia.registry._storage import NAME_PATTERN
from harmonia.registry.metadata import VersionMetadata
from harmonia.server.api import API
from harmonia.server.api.deps import Caller
from harmonia.server.api.responses import JSONBody
from harmonia.server.api.routes.domains import DomainPath
from harmonia.server.catalog import CatalogService
from harmonia.server.catalog_schemas import (
    KIND_OF,
    AliasesOut,
    AliasIn,
    AliasMoveOut,
    ApprovalOut,
    ArtifactOut,
    EnergyIn,
    GrantOut,
    Kinds,
    PromoteIn,
    PromotionOut,
    VersionEnergyOut,
    VersionOut,
    approval_out,
    artifact_out,
    energy_out,
    grant_out,
    move_out,
    version_out,
)
from harmonia.server.errors import Invalid
from harmonia.server.openapi import errors, text_reply
from harmonia.server.principals import Principal
from harmonia.server.schemas import field_errors
from harmonia.server.uploads import BodyReader, MultipartForm, body_chunks, file_bytes
from harmonia.store.catalog import ArtifactVersion

router = APIRouter(prefix=API, tags=["registry"])

#: uploads, whose bodies may be as large as an artifact (`harmonia.server.middleware`)
UPLOAD_PATH = r"^/api/v1/domains/[^/]+/(models|datasets)/[^/]+/versions$"
#: the reply header of a download that carries the bytes' sha256 (hex, as ``sha256sum``)
CHECKSUM_HEADER = "X-Checksum-Sha256"

ArtifactName = Annotated[str, Path(pattern=NAME_PATTERN, max_length=64)]
Ref = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$", max_length=64)]
VersionNumber = Annotated[int, Path(ge=1, le=2**31 - 1)]
Alias = Annotated[str, Path(pattern=r"^[A-Za-z][A-Za-z0-9_.+-]{0,63}$", max_length=64)]
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]
UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "metadata": {
                            "type": "string",
                            "description": "VersionMetadata as JSON (label, tags, library, "
                            "library_version, parameters, characteristics, quality, energy, "
                            "data_schema, fingerprint, training, trained_on, retrained_from)",
                        },
                    },
                }
            }
        },
    }
}


def get_catalog(request: Request) -> CatalogService:
    service: CatalogService = request.app.state.catalog
    return service


CatalogDep = Annotated[CatalogService, Depends(get_catalog)]


# -- versions -----------------------------------------------------------------------------------
@router.post(
    "/domains/{domain}/{kinds}/{name}/versions",
    status_code=201,
    response_model=VersionOut,
    responses=errors(401, 403, 404, 409, 413, 422, 503),
    openapi_extra=UPLOAD_BODY,
)
async def push(
    domain: DomainPath,
    kinds: Kinds,
    name: ArtifactName,
    request: Request,
    caller: Caller,
    service: CatalogDep,
) -> dict[str, Any]:
    """Upload a new version (multipart: the bytes as ``file``, optional ``metadata`` JSON),
    streamed into the artifact store while its sha256 is computed; its number is the next
    one. Over the server's size limit: 413, and nothing is kept. Needs ``write``."""
    kind = KIND_OF[kinds]
    content_type = request.headers.get("content-type", "")
    await run_in_threadpool(_may_push, service, caller, domain, kind, name)
    reader = BodyReader(request)

    def upload() -> ArtifactVersion:
        form = MultipartForm(content_type, body_chunks(reader))
        catalog = service.catalog
        key = catalog.new_key(kind)
        stored = catalog.artifacts.put(key, file_bytes(form, "file"), max_bytes=catalog.max_bytes)
        try:
            if not form.files:
                raise Invalid([{"field": "file", "reason": "required: the artifact's bytes"}])
            metadata = parse_metadata(form.fields.get("metadata"))
        except BaseException:
            catalog.artifacts.delete(stored.key)
            raise
        part = form.files[0]
        return service.add(
            caller,
            domain,
            kind,
            name,
            stored,
            metadata,
            filename=part.filename,
            media_type=part.content_type,
        )

    return version_out(await run_in_threadpool(upload))


def _may_push(
    service: CatalogService, caller: Principal, domain: str, kind: str, name: str
) -> None:
    service.require(caller, domain, "write", f"{kind}.push", f"{kind}:{domain}/{name}")
    service.store.domain(domain)  # 404 before the body is read, not after


def parse_metadata(text: str | None) -> VersionMetadata:
    """The ``metadata`` field of an upload, or `Invalid` naming what is wrong in it."""
    if text is None or not text.strip():
        return VersionMetadata()
    try:
        return VersionMetadata.model_validate(load_json(text))
    except (DocumentTooComplex, orjson.JSONDecodeError) as error:
        raise Invalid([{"field": "metadata", "reason": str(error)}]) from None
    except ValidationError as error:
        raise Invalid(
            [{**e, "field": f"metadata.{e['field']}"} for e in field_errors(error)]
        ) from None


@router.get(
    "/domains/{domain}/{kinds}",
    response_model=list[ArtifactOut],
    responses=errors(401, 403, 404, 422, 503),
)
def artifacts(
    domain: DomainPath, kinds: Kinds, caller: Caller, service: CatalogDep
) -> list[dict[str, Any]]:
    """The domain's models (or datasets): latest version, aliases, grants."""
    caller.require(domain, "read")
    return [artifact_out(a) for a in service.store.artifacts(domain, KIND_OF[kinds])]


@router.get(
    "/domains/{domain}/{kinds}/{name}",
    response_model=ArtifactOut,
    responses=errors(401, 403, 404, 422, 503),
)
def artifact(
    domain: DomainPath, kinds: Kinds, name: ArtifactName, caller: Caller, service: CatalogDep
) -> dict[str, Any]:
    kind = KIND_OF[kinds]
    service.require_read(caller, domain, kind, name)
    return artifact_out(service.catalog.artifact(domain, kind, name))


@router.get(
    "/domains/{domain}/{kinds}/{name}/versions",
    response_model=list[VersionOut],
    responses=errors(401, 403, 404, 422, 503),
)
def versions(
    domain: DomainPath,
    kinds: Kinds,
    name: ArtifactName,
    caller: Caller,
    service: CatalogDep,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[dict[str, Any]]:
    """The versions, newest first."""
    kind = KIND_OF[kinds]
    service.require_read(caller, domain, kind, name)
    found = service.catalog.versions(domain, kind, name, limit=limit, offset=offset)
    return [version_out(v) for v in found]


@router.get(
    "/domains/{domain}/{kinds}/{name}/versions/{ref}",
    response_model=VersionOut,
    responses=errors(401, 403, 404, 422, 503),
)
def version(
    domain: DomainPath,
    kinds: Kinds,
    name: ArtifactName,
    ref: Ref,
    caller: Caller,
    service: CatalogDep,
) -> dict[str, Any]:
    """One version: by number, ``latest``, an alias or a label."""
    return version_out(service.version(caller, domain, KIND_OF[kinds], name, ref))


@router.get(
    "/domains/{domain}/{kinds}/{name}/versions/{ref}/data",
    response_class=StreamingResponse,
    responses={
        200: text_reply("application/octet-stream", "The version's bytes", binary=True),
        **errors(401, 403, 404, 422, 503),
    },
)
async def pull(
    domain: DomainPath,
    kinds: Kinds,
    name: ArtifactName,
    ref: Ref,
    caller: Caller,
    service: CatalogDep,
) -> StreamingResponse:
    """The version's bytes, streamed, with their sha256 in ``X-Checksum-Sha256`` and their
    length in ``Content-Length``. Bytes damaged where they are kept are detected on the way
    and the stream ends before its last chunk: the client gets fewer bytes than announced."""
    kind = KIND_OF[kinds]
    found = await run_in_threadpool(service.version, caller, domain, kind, name, ref)
    chunks = await run_in_threadpool(service.open, found)
    return download(found, chunks)


def download(found: ArtifactVersion, chunks: Iterator[bytes]) -> StreamingResponse:
    """A streamed reply of a version's bytes with their length, sha256 and version."""
    filename = found.filename.replace('"', "").replace("\\", "") or found.name
    return StreamingResponse(
        chunks,
        media_type=found.media_type or "application/octet-stream",
        headers={
            "Content-Length": str(found.size),
            CHECKSUM_HEADER: found.sha256,
            "X-Harmonia-Version": str(found.ref),
            "Content-Disposition": f'attachment; filename="{filename}"',
        },
    )


@router.post(
    "/domains/{domain}/{kinds}/{name}/versions/{ref}/verify",
    response_model=VersionOut,
    responses=errors(401, 403, 404, 422, 503),
)
def verify(
    domain: DomainPath,
    kinds: Kinds,
    name: ArtifactName,
    ref: Ref,
    caller: Caller,
    service: CatalogDep,
) -> dict[str, Any]:
    """Read the whole version back and check it against its sha256: 500 if it is damaged."""
    found = service.version(caller, domain, KIND_OF[kinds], name, ref)
    service.catalog.verify(found)
    return version_out(found)


@router.delete(
    "/domains/{domain}/{kinds}/{name}/versions/{number}",
    response_model=VersionOut,
    responses=errors(401, 403, 404, 409, 422, 503),
)
def delete_version(
    domain: DomainPath,
    kinds: Kinds,
    name: ArtifactName,
    number: VersionNumber,
    caller: Caller,
    service: CatalogDep,
) -> dict[str, Any]:
    """Remove a version and its bytes (409 while an alias points at it). Its number is
    never given again. Needs ``write``."""
    return version_out(service.delete(caller, domain, KIND_OF[kinds], name, number))


# -- aliases and promotions ---------------------------------------------------------------------
@router.get(
    "/domains/{domain}/{kinds}/{name}/aliases",
    response_model=AliasesOut,
    responses=errors(401, 403, 404, 422, 503),
)
def aliases(
    domain: DomainPath, kinds: Kinds, name: ArtifactName, caller: Caller, service: CatalogDep
) -> dict[str, Any]:
    """Where each alias points, and every move of them (who, when, from which version)."""
    kind = KIND_OF[kinds]
    service.require_read(caller, domain, kind, name)
    return {
        "aliases": service.catalog.artifact(domain, kind, name).aliases,
        "history": [move_out(m) for m in service.store.alias_history(domain, kind, name)],
    }


@router.put(
    "/domains/{domain}/{kinds}/{name}/aliases/{alias}",
    response_model=AliasMoveOut,
    responses=errors(400, 401, 403, 404, 413, 422, 503),
)
def set_alias(
    domain: DomainPath,
    kinds: Kinds,
    name: ArtifactName,
    alias: Alias,
    body: AliasIn,
    caller: Caller,
    service: CatalogDep,
) -> dict[str, Any]:
    """Point an alias (``staging``, ``canary``...) at a version; ``production`` moves only
    by promotion. Needs ``write``."""
    kind = KIND_OF[kinds]
    move = service.set_alias(caller, domain, kind, name, alias, body.version, body.reason)
    return move_out(move)


@router.delete(
    "/domains/{domain}/{kinds}/{name}/aliases/{alias}",
    response_model=AliasMoveOut,
    responses=errors(401, 403, 404, 422, 503),
)
def unset_alias(
    domain: DomainPath,
    kinds: Kinds,
    name: ArtifactName,
    alias: Alias,
    caller: Caller,
    service: CatalogDep,
) -> dict[str, Any]:
    """Unset an alias (the move is kept in the history). Needs ``write``."""
    return move_out(service.set_alias(caller, domain, KIND_OF[kinds], name, alias, None, ""))


@router.post(
    "/domains/{domain}/{kinds}/{name}/promote",
    response_model=PromotionOut,
    responses=errors(400, 401, 403, 404, 409, 413, 422, 503),
)
def promote(
    domain: DomainPath,
    kinds: Kinds,
    name: ArtifactName,
    body: PromoteIn,
    caller: Caller,
    service: CatalogDep,
) -> dict[str, Any]:
    """Promote the ``staging`` version to ``production``: the caller approves it (needs
    ``admin`` on the domain), and the approval is kept with its note."""
    kind = KIND_OF[kinds]
    approval, move = service.promote(
        caller, domain, kind, name, note=body.note, version=body.version
    )
    return {"approval": approval_out(approval), "move": move_out(move)}


@router.get(
    "/domains/{domain}/{kinds}/{name}/approvals",
    response_model=list[ApprovalOut],
    responses=errors(401, 403, 404, 422, 503),
)
def approvals(
    domain: DomainPath, kinds: Kinds, name: ArtifactName, caller: Caller, service: CatalogDep
) -> list[dict[str, Any]]:
    """The approvals of the promotions, oldest first."""
    kind = KIND_OF[kinds]
    service.require_read(caller, domain, kind, name)
    return [approval_out(a) for a in service.store.approvals(domain, kind, name)]


# -- grants -------------------------------------------------------------------------------------
@router.get(
    "/domains/{domain}/{kinds}/{name}/grants",
    response_model=list[GrantOut],
    responses=errors(401, 403, 404, 422, 503),
)
def grants(
    domain: DomainPath, kinds: Kinds, name: ArtifactName, caller: Caller, service: CatalogDep
) -> list[dict[str, Any]]:
    """The domains the artifact is shared with."""
    kind = KIND_OF[kinds]
    caller.require(domain, "read")
    return [grant_out(g) for g in service.store.artifact_grants(domain, kind, name)]


@router.put(
    "/domains/{domain}/{kinds}/{name}/grants/{to_domain}",
    response_model=list[GrantOut],
    responses=errors(401, 403, 404, 422, 503),
)
def grant(
    domain: DomainPath,
    kinds: Kinds,
    name: ArtifactName,
    to_domain: DomainPath,
    caller: Caller,
    service: CatalogDep,
) -> list[dict[str, Any]]:
    """Let ``to_domain`` read the artifact, every version of it. Needs ``admin``."""
    kind = KIND_OF[kinds]
    service.grant(caller, domain, kind, name, to_domain)
    return [grant_out(g) for g in service.store.artifact_grants(domain, kind, name)]


@router.delete(
    "/domains/{domain}/{kinds}/{name}/grants/{to_domain}",
    response_model=list[GrantOut],
    responses=errors(401, 403, 404, 422, 503),
)
def revoke(
    domain: DomainPath,
    kinds: Kinds,
    name: ArtifactName,
    to_domain: DomainPath,
    caller: Caller,
    service: CatalogDep,
) -> list[dict[str, Any]]:
    """Take the grant back. Needs ``admin``."""
    kind = KIND_OF[kinds]
    service.revoke(caller, domain, kind, name, to_domain)
    return [grant_out(g) for g in service.store.artifact_grants(domain, kind, name)]


# -- energy -------------------------------------------------------------------------------------
@router.post(
    "/domains/{domain}/{kinds}/{name}/versions/{ref}/energy",
    status_code=201,
    response_model=VersionEnergyOut,
    responses=errors(400, 401, 403, 404, 413, 422, 503),
)
def record_energy(
    domain: DomainPath,
    kinds: Kinds,
    name: ArtifactName,
    ref: Ref,
    body: EnergyIn,
    caller: Caller,
    service: CatalogDep,
) -> dict[str, Any]:
    """Record energy the caller measured on a version (a training run, an evaluation, a
    promotion's checks), with how it was obtained. Needs ``write``."""
    kind = KIND_OF[kinds]
    service.require(caller, domain, "write", f"{kind}.energy", f"{kind}:{domain}/{name}")
    found = service.catalog.version(domain, kind, name, ref)
    service.catalog.record_energy(
        found,
        body.phase,
        joules=body.joules,
        seconds=body.seconds,
        source=body.source,
        by=caller.name,
        detail=body.detail,
    )
    return energy_out(found, service.catalog.energy(found))


@router.get(
    "/domains/{domain}/{kinds}/{name}/versions/{ref}/energy",
    response_model=VersionEnergyOut,
    responses=errors(401, 403, 404, 422, 503),
)
def energy(
    domain: DomainPath,
    kinds: Kinds,
    name: ArtifactName,
    ref: Ref,
    caller: Caller,
    service: CatalogDep,
) -> dict[str, Any]:
    """What the version cost from training to serving: joules of its training runs,
    evaluations and promotions, and joules per inference in service per domain (from the
    telemetry of the applications that report serving this model at this version)."""
    found = service.version(caller, domain, KIND_OF[kinds], name, ref)
    return energy_out(found, service.catalog.energy(found))


# -- search -------------------------------------------------------------------------------------
@router.get(
    "/catalog",
    # documented, not validated: a page of 100 versions through the response model costs
    # milliseconds; the replies are built by `version_out` alone
    response_model=None,
    responses={
        200: {"model": list[VersionOut], "description": "The versions, newest first"},
        **errors(401, 422, 503),
    },
)
def search(
    caller: Caller,
    service: CatalogDep,
    kind: Annotated[str | None, Query(pattern="^(model|dataset)$")] = None,
    domain: Annotated[str | None, Query(max_length=64)] = None,
    name: Annotated[str | None, Query(max_length=64)] = None,
    tag: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[str | None, Query(pattern="^(production|staging|development)$")] = None,
    label: Annotated[str | None, Query(max_length=64)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> JSONBody:
    """Versions of models and datasets the caller may read (its domains' and those granted
    to them), newest first, by domain, name, tag, status or label."""
    found = service.store.search_artifact_versions(
        readers=service.readers(caller),
        kind=kind,
        domain=domain,
        name=name,
        tag=tag,
        status=status,
        label=label,
        limit=limit,
        offset=offset,
    )
    return JSONBody([version_out(v) for v in found])
