"""An application's policy: setting it, the one in force, every version."""

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from harmonia.server.api import API
from harmonia.server.api.deps import AppAuth, KnownApp, ServerDep
from harmonia.server.schemas import POLICY_BODY, PolicyOut, PolicyStoredOut, errors
from harmonia.store import NotFound

router = APIRouter(prefix=API)


@router.put(
    "/apps/{name}/policy",
    status_code=201,
    response_model=PolicyStoredOut,
    responses=errors(401, 403, 404, 413, 422, 503),
    openapi_extra=POLICY_BODY,
)
async def put_policy(app: AppAuth, request: Request, server: ServerDep) -> dict[str, Any]:
    # the body limit applies (`BodyLimit`); parsing is bounded and off the event loop
    text = (await request.body()).decode("utf-8", errors="replace")
    stored = await run_in_threadpool(server.apply_policy, app, text)
    return {"app": app.name, "version": stored.version}


@router.get(
    "/apps/{name}/policies",
    response_model=list[PolicyOut],
    responses=errors(404, 422, 503),
)
def policy_versions(app: KnownApp, server: ServerDep) -> list[dict[str, Any]]:
    """Every version of the app's policy, oldest first; the last is in force."""
    return [
        {"version": p.version, "document": p.document, "created": p.created}
        for p in server.store.policies(app)
    ]


@router.get("/apps/{name}/policy", response_model=PolicyOut, responses=errors(404, 422, 503))
def get_policy(app: KnownApp, server: ServerDep) -> dict[str, Any]:
    stored = server.store.policy(app)
    if stored is None:
        raise NotFound(f"{app.name!r} has no policy yet")
    return {"version": stored.version, "document": stored.document, "created": stored.created}
