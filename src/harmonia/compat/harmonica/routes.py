"""Harmonica's API, so that Harmonica's dashboard and managed systems run against Harmonia
unchanged (request and reply shapes recorded from Harmonica's own server:
tests/data/harmonica/sequences.json).

``/api/policy``, ``/api/telemetry``, ``/api/knowledge/<id>``, ``/api/reset`` and
``/api/write-approach`` answer as Harmonica's ACP server does; a violated boundary POSTs
``{tactic_id, trigger_value, trigger_timestamp}`` to the tactic's endpoint, and secondary
boundaries are checked periodically (`harmonia.compat.harmonica.knowledge`). The routes that
write into Harmonica's tool folder or start its managed system (``save-policy``,
``set-model``, ``start-managed-system``, ``stop-managed-system``, ``upload-custom-mape``)
are off until the operator names that folder; off, they answer 403 with the setting to set.

What differs is kept on purpose: policies are validated (Harmonica accepted anything with a
``policy_id``), the knowledge lives in the database, and Harmonica's systems send no token,
so these routes accept token-less requests from a local Harmonica system only (`allowed`);
others need the admin token.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from harmonia.bounded import DocumentTooComplex, load_json
from harmonia.compat.harmonica.knowledge import UNASSIGNED, HarmonicaCompat, Refused
from harmonia.compat.harmonica.schemas import (
    SAVE_POLICY_BODY,
    SET_MODEL_BODY,
    UPLOAD_BODY,
    WRITE_APPROACH_BODY,
    HarmonicaKnowledgeOut,
    HarmonicaStatusOut,
    HarmonicaUploadOut,
    route_errors,
)
from harmonia.compat.harmonica.tool import TOOL_DIR_SETTING, ToolError, ToolOff, checked_name
from harmonia.compat.harmonica.uploads import UploadRefused
from harmonia.server.openapi import HARMONICA_POLICY_BODY, HARMONICA_TELEMETRY_BODY
from harmonia.server.schemas import HarmonicaMessageOut
from harmonia.store import same_secret

__all__ = ["UNASSIGNED", "UPLOAD_PATH", "HarmonicaCompat", "router"]

LOOPBACK = {"127.0.0.1", "::1"}
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}
#: streamed past the server's document limit; the route bounds it itself
UPLOAD_PATH = r"^/api/upload-custom-mape$"
REFUSED = "Harmonica's routes need the admin token, except from a local Harmonica system"
NOT_JSON = "Content-Type must be application/json (Harmonica's server answers 415 too)"
_JSON_TYPE = re.compile(r"^application/(json|[^;\s]+\+json)\s*(;.*)?$", re.IGNORECASE)


def _error(message: Any, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _host_name(host: str) -> str:
    """``host`` of a Host header without its port (``[::1]:8000`` → ``[::1]``)."""
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def allowed(compat: HarmonicaCompat, request: Request) -> bool:
    """Harmonica's systems send no token. Token-less requests are taken only from a
    loopback client that asked for a loopback Host (a DNS-rebound name does not pass) and
    whose Origin, if any, the operator allowed (a web page open in a local browser does not
    pass). Anyone else needs the admin token."""
    header = request.headers.get("authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else ""
    if token:
        return same_secret(token, compat.server.admin_token)
    client = request.client.host if request.client else ""
    host = _host_name(request.headers.get("host", ""))
    origin = request.headers.get("origin")
    return (
        client in LOOPBACK
        and host in LOOPBACK_HOSTS
        and (origin is None or origin in compat.server.guards.cors_origins)
    )


router = APIRouter(tags=["harmonica"])


async def compat_of(request: Request) -> HarmonicaCompat:
    """The app's `HarmonicaCompat` (made by `harmonia.server.app.create_app`)."""
    compat: HarmonicaCompat = request.app.state.harmonica
    return compat


Compat = Annotated[HarmonicaCompat, Depends(compat_of)]


async def _answer(handle: Callable[[], JSONResponse]) -> JSONResponse:
    """``handle`` off the event loop, its refusals in Harmonica's shape."""
    try:
        return await run_in_threadpool(handle)
    except Refused as refused:
        return _error(refused.errors, 400)
    except ToolOff as off:
        return _error(str(off), 403)
    except (ToolError, UploadRefused) as error:
        return _error(str(error), 400)


async def _posted(
    request: Request, compat: HarmonicaCompat, handle: Callable[[Any], JSONResponse]
) -> JSONResponse:
    """``handle`` the JSON body (None if it is not JSON) for a caller Harmonica's routes
    accept; like Harmonica (Flask's ``request.json``), a body not sent as JSON is 415. The
    server's body limit applies, and parsing is bounded."""
    if not allowed(compat, request):
        return _error(REFUSED, 401)
    if not _JSON_TYPE.match(request.headers.get("content-type", "")):
        return _error(NOT_JSON, 415)
    try:
        document = await run_in_threadpool(load_json, await request.body())
    except DocumentTooComplex as error:
        return _error(str(error), 413)
    except ValueError:
        document = None
    return await _answer(lambda: handle(document))


def _message(text: str, status: int = 200) -> JSONResponse:
    return JSONResponse({"message": text}, status_code=status)


@router.post(
    "/api/policy",
    status_code=201,
    response_model=None,
    responses={
        201: {"model": HarmonicaMessageOut, "description": "Stored and in force"},
        **route_errors(400, 401, 413, 415),
    },
    openapi_extra=HARMONICA_POLICY_BODY,
)
async def harmonica_policy(request: Request, compat: Compat) -> JSONResponse:
    def add(document: Any) -> JSONResponse:
        compat.add_policy(document)
        return _message("Policy added", 201)

    return await _posted(request, compat, add)


@router.post(
    "/api/telemetry",
    response_model=None,
    responses={
        200: {"model": HarmonicaMessageOut, "description": "Recorded and analysed"},
        **route_errors(400, 401, 413, 415),
    },
    openapi_extra=HARMONICA_TELEMETRY_BODY,
)
async def harmonica_telemetry(request: Request, compat: Compat) -> JSONResponse:
    def record(message: Any) -> JSONResponse:
        compat.telemetry(message)
        return _message("Telemetry received")

    return await _posted(request, compat, record)


@router.get(
    "/api/knowledge/{policy_id}",
    response_model=None,
    responses={
        200: {
            "model": HarmonicaKnowledgeOut,
            "description": "The policy (null if unknown) and its history",
        },
        **route_errors(401, 422),
    },
)
async def harmonica_knowledge(policy_id: str, request: Request, compat: Compat) -> JSONResponse:
    if not allowed(compat, request):
        return _error(REFUSED, 401)
    return await _answer(lambda: JSONResponse(compat.knowledge(policy_id)))


@router.post(
    "/api/reset",
    response_model=None,
    responses={
        200: {
            "model": HarmonicaMessageOut,
            "description": "Policies, telemetry and interventions forgotten",
        },
        **route_errors(401),
    },
)
async def harmonica_reset(request: Request, compat: Compat) -> JSONResponse:
    if not allowed(compat, request):
        return _error(REFUSED, 401)

    def reset() -> JSONResponse:
        compat.reset()
        return _message("Knowledge base reset.")

    return await _answer(reset)


@router.post(
    "/api/write-approach",
    response_model=None,
    responses={
        200: {
            "model": HarmonicaMessageOut,
            "description": "The knowledge base forgotten and, with a tool folder, the "
            "managed system stopped and approach.conf written",
        },
        **route_errors(400, 401, 413, 415),
    },
    openapi_extra=WRITE_APPROACH_BODY,
)
async def harmonica_write_approach(request: Request, compat: Compat) -> JSONResponse:
    def write(body: Any) -> JSONResponse:
        approach = body.get("approach") if isinstance(body, dict) else None
        if not isinstance(approach, str):
            raise ToolError('the body must be {"approach": "<name>"}')
        checked_name(approach, "approach")
        if compat.options.tool_dir is None:
            compat.reset()
            return _message(
                f"Knowledge base cleared; approach.conf not written: set {TOOL_DIR_SETTING} "
                "to Harmonica's tool/ folder to have it written"
            )
        compat.tool.write_approach(approach)
        compat.reset()
        return _message("Approach written and system cleaned")

    return await _posted(request, compat, write)


@router.post(
    "/api/save-policy",
    response_model=None,
    responses={
        200: {"model": HarmonicaMessageOut, "description": "Written to policies/<id>.json"},
        **route_errors(400, 401, 403, 413, 415),
    },
    openapi_extra=SAVE_POLICY_BODY,
)
async def harmonica_save_policy(request: Request, compat: Compat) -> JSONResponse:
    def save(document: Any) -> JSONResponse:
        compat.tool.folder  # noqa: B018 - off: say so before looking at the body
        if not isinstance(document, dict):
            raise Refused("Invalid policy format")
        compat.tool.save_policy(document)
        return _message("Policy saved")

    return await _posted(request, compat, save)


@router.post(
    "/api/set-model",
    response_model=None,
    responses={
        200: {"model": HarmonicaMessageOut, "description": "The model the system starts with"},
        **route_errors(400, 401, 403, 413, 415),
    },
    openapi_extra=SET_MODEL_BODY,
)
async def harmonica_set_model(request: Request, compat: Compat) -> JSONResponse:
    def set_model(body: Any) -> JSONResponse:
        compat.tool.folder  # noqa: B018
        if not isinstance(body, dict):
            raise ToolError('the body must be {"model": ..., "system": ...}')
        compat.tool.set_model(body.get("model"), body.get("system"))
        return _message("Model set")

    return await _posted(request, compat, set_model)


@router.post(
    "/api/start-managed-system",
    response_model=None,
    responses={
        200: {"model": HarmonicaStatusOut, "description": "Started (or already running)"},
        **route_errors(401, 403),
    },
)
async def harmonica_start(request: Request, compat: Compat) -> JSONResponse:
    if not allowed(compat, request):
        return _error(REFUSED, 401)
    return await _answer(lambda: JSONResponse({"status": "ok", "message": compat.tool.start()}))


@router.post(
    "/api/stop-managed-system",
    response_model=None,
    responses={
        200: {"model": HarmonicaStatusOut, "description": "Stopped (if this server started it)"},
        **route_errors(401, 403),
    },
)
async def harmonica_stop(request: Request, compat: Compat) -> JSONResponse:
    if not allowed(compat, request):
        return _error(REFUSED, 401)

    def stop() -> JSONResponse:
        compat.tool.folder  # noqa: B018
        compat.tool.stop()
        return JSONResponse({"status": "ok", "message": "Managed system stopped"})

    return await _answer(stop)


@router.post(
    "/api/upload-custom-mape",
    response_model=None,
    responses={
        200: {"model": HarmonicaUploadOut, "description": "The custom system is built"},
        **route_errors(400, 401, 403, 411, 413),
    },
    openapi_extra=UPLOAD_BODY,
)
async def harmonica_upload(request: Request, compat: Compat) -> JSONResponse:
    if not allowed(compat, request):
        return _error(REFUSED, 401)
    try:
        compat.tool.require_custom()
    except ToolOff as off:
        return _error(str(off), 403)
    declared = request.headers.get("content-length", "")
    if not declared.isdigit():
        return _error("an upload must declare its Content-Length", 411)
    limit = compat.options.max_upload_bytes
    if int(declared) > limit:
        return _error(f"the upload is over {limit} bytes", 413)
    try:
        form = await request.form(max_files=16, max_fields=16)
    except Exception as error:  # python-multipart's and Starlette's refusals of the form
        return _error(f"not a multipart form: {error}", 400)
    try:
        files = [
            (str(part.filename), await part.read())
            for part in form.getlist("files[]")
            if not isinstance(part, str)
        ]
        dataset_part = form.get("dataset")
        dataset = (
            (str(dataset_part.filename), await dataset_part.read())
            if dataset_part is not None and not isinstance(dataset_part, str)
            else None
        )
        base = form.get("base_system")
    finally:
        await form.close()

    def build() -> JSONResponse:
        count, approach = compat.tool.build_custom(base, files, dataset)
        compat.reset()
        return JSONResponse(
            {"message": f"Custom system built with {count} MAPE files.", "approach": approach}
        )

    return await _answer(build)
