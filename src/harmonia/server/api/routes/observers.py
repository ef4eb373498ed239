"""An application's observers: setting them, the ones running, and what their runs found."""

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from harmonia.server.api import API
from harmonia.server.api.deps import AppAuth, KnownApp, ServerDep, clamp_limit
from harmonia.server.fields import Name
from harmonia.server.openapi import OBSERVERS_BODY, errors
from harmonia.server.schemas import ContractStoredOut, ObservationOut, ObserversOut
from harmonia.store import NotFound

router = APIRouter(prefix=API)


@router.put(
    "/apps/{name}/observers",
    status_code=201,
    response_model=ContractStoredOut,
    responses=errors(401, 403, 404, 413, 422, 503),
    openapi_extra=OBSERVERS_BODY,
)
async def put_observers(app: AppAuth, request: Request, server: ServerDep) -> dict[str, Any]:
    """The app's observers (``observers: [...]``, YAML or JSON): validated (unknown
    observers and parameters refused), versioned, running from the next batch on."""
    text = (await request.body()).decode("utf-8", errors="replace")
    version = await run_in_threadpool(server.observers.configure, app, text)
    return {"app": app.name, "version": version}


@router.get("/apps/{name}/observers", response_model=ObserversOut, responses=errors(404, 422))
def get_observers(app: KnownApp, server: ServerDep) -> dict[str, Any]:
    stored = server.store.observers(app)
    if stored is None:
        raise NotFound(f"{app.name!r} has no observers")
    version, document = stored
    stats = server.observers.runner.stats(app.name) if server.observers.watches(app) else {}
    return {
        "version": version,
        "document": document,
        "stats": {name: dict(vars(s)) for name, s in stats.items()},
        "skipped_batches": server.observers.skipped,
    }


@router.get(
    "/apps/{name}/observations",
    response_model=list[ObservationOut],
    responses=errors(404, 422, 503),
)
def observations(
    app: KnownApp, server: ServerDep, observer: Name | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Observer runs, newest first (of every observer, or of the one named ``observer``):
    their values (read as ``observer.<name>.<field>``), the flagged samples' timestamps, the
    explanation, or the error of a run that failed."""
    return server.store.observations(app, observer, clamp_limit(limit))
