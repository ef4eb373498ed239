"""Policies attach to services: setting one, the one in force, every version. The routes
without a service are the one-service application's (they name the service otherwise)."""

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from harmonia.server.api import API
from harmonia.server.api.deps import AppAuth, KnownApp, ServerDep
from harmonia.server.fields import Name
from harmonia.server.openapi import POLICY_BODY, errors
from harmonia.server.schemas import PolicyOut, PolicyStoredOut
from harmonia.server.service import Server
from harmonia.store import App, NotFound, StoredPolicy

router = APIRouter(prefix=API)


@router.put(
    "/apps/{name}/policy",
    status_code=201,
    response_model=PolicyStoredOut,
    responses=errors(401, 403, 404, 413, 422, 503),
    openapi_extra=POLICY_BODY,
)
async def put_policy(app: AppAuth, request: Request, server: ServerDep) -> dict[str, Any]:
    return await _put(app, None, request, server)


@router.put(
    "/apps/{name}/services/{service}/policy",
    status_code=201,
    response_model=PolicyStoredOut,
    responses=errors(401, 403, 404, 413, 422, 503),
    openapi_extra=POLICY_BODY,
)
async def put_service_policy(
    app: AppAuth, service: Name, request: Request, server: ServerDep
) -> dict[str, Any]:
    return await _put(app, service, request, server)


async def _put(app: App, service: str | None, request: Request, server: Server) -> dict[str, Any]:
    # the body limit applies (`BodyLimit`); parsing is bounded and off the event loop
    text = (await request.body()).decode("utf-8", errors="replace")
    stored = await run_in_threadpool(server.apply_policy, app, text, service)
    return {"app": app.name, "service": stored.service, "version": stored.version}


@router.get(
    "/apps/{name}/policies",
    response_model=list[PolicyOut],
    responses=errors(404, 422, 503),
)
def policy_versions(
    app: KnownApp, server: ServerDep, service: Name | None = None
) -> list[dict[str, Any]]:
    """Every version of the policies of the app's services (or of one), oldest first; the
    last of a service is in force."""
    return [_view(p) for p in server.store.policies(app, service)]


@router.get("/apps/{name}/policy", response_model=PolicyOut, responses=errors(404, 422, 503))
def get_policy(app: KnownApp, server: ServerDep) -> dict[str, Any]:
    return _in_force(server, app, server.service_of(app, None))


@router.get(
    "/apps/{name}/services/{service}/policy",
    response_model=PolicyOut,
    responses=errors(404, 422, 503),
)
def get_service_policy(app: KnownApp, service: Name, server: ServerDep) -> dict[str, Any]:
    return _in_force(server, app, server.service_of(app, service))


def _in_force(server: Server, app: App, service: str) -> dict[str, Any]:
    stored = server.store.policy(app, service)
    if stored is None:
        raise NotFound(f"{app.name}/{service} has no policy yet")
    return _view(stored)


def _view(stored: StoredPolicy) -> dict[str, Any]:
    return {
        "service": stored.service,
        "version": stored.version,
        "document": stored.document,
        "created": stored.created,
    }
