"""An application's contract: setting it (Harmonia's, ROHE's or QoA4ML's format), the one in
force, its SLOs' status, checking it now, and the violations found."""

from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from harmonia.server.api import API
from harmonia.server.api.deps import AppAuth, KnownApp, ServerDep, clamp_limit
from harmonia.server.contracts import contract_view
from harmonia.server.openapi import CONTRACT_BODY, errors
from harmonia.server.schemas import ContractOut, ContractStoredOut, SLOResultOut, ViolationOut
from harmonia.store import NotFound

router = APIRouter(prefix=API)


@router.put(
    "/apps/{name}/contract",
    status_code=201,
    response_model=ContractStoredOut,
    responses=errors(401, 403, 404, 413, 422, 503),
    openapi_extra=CONTRACT_BODY,
)
async def put_contract(
    app: AppAuth,
    request: Request,
    server: ServerDep,
    format: Literal["harmonia", "rohe", "qoa4ml"] | None = None,
) -> dict[str, Any]:
    """A contract in Harmonia's format, ROHE's ``ServiceContract`` or QoA4ML's
    ``MLContract`` (``format``; told apart by their keys when not given), validated against
    the app's stages and services, versioned, in force at once."""
    text = (await request.body()).decode("utf-8", errors="replace")
    stored = await run_in_threadpool(server.contracts.apply, app, text, format)
    return {"app": app.name, "version": stored.version}


@router.get("/apps/{name}/contract", response_model=ContractOut, responses=errors(404, 422, 503))
def get_contract(app: KnownApp, server: ServerDep) -> dict[str, Any]:
    found = server.contracts.contract(app)
    if found is None:
        raise NotFound(f"{app.name!r} has no contract yet")
    return contract_view(*found)


@router.post(
    "/apps/{name}/contract/check",
    response_model=list[SLOResultOut],
    responses=errors(401, 403, 404, 422, 503),
)
async def check_contract(app: AppAuth, server: ServerDep) -> list[dict[str, Any]]:
    """Check the contract over the latest telemetry now (the server also does so
    periodically): every SLO's status, and the violations it finds are recorded."""
    if server.contracts.contract(app) is None:
        raise NotFound(f"{app.name!r} has no contract yet")
    results = await run_in_threadpool(server.contracts.check, app)
    return [r.as_dict() for r in results]


@router.get("/apps/{name}/slos", response_model=list[SLOResultOut], responses=errors(404, 422))
def slos(app: KnownApp, server: ServerDep) -> list[dict[str, Any]]:
    """Each SLO's status at the latest check: met, at risk, violated or no data."""
    return [r.as_dict() for r in server.contracts.last(app)]


@router.get(
    "/apps/{name}/violations",
    response_model=list[ViolationOut],
    responses=errors(404, 422, 503),
)
def violations(
    app: KnownApp,
    server: ServerDep,
    start: float | None = Query(default=None, allow_inf_nan=False),
    end: float | None = Query(default=None, allow_inf_nan=False),
    limit: int = 100,
) -> list[dict[str, Any]]:
    """SLO violations, newest first: actual against target, the window, the explanation
    that traces them to a stage, service, instance and node, and the action taken."""
    return server.store.violations(app, start, end, clamp_limit(limit))
