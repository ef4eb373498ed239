"""Applications: registration, the list, one app's structure, its instances, and the signals
of its pipeline per service, per stage and end to end."""

from typing import Any

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from harmonia.core.pipeline import summarize_pipeline
from harmonia.server.api import API
from harmonia.server.api.deps import AppAuth, Caller, KnownApp, ServerDep
from harmonia.server.fields import Name
from harmonia.server.observe import finite_row
from harmonia.server.openapi import errors
from harmonia.server.schemas import (
    AppIn,
    AppOut,
    InstanceIn,
    InstanceOut,
    PipelineOut,
    RegisteredAppOut,
)
from harmonia.server.service import Server
from harmonia.store import App, Instance

router = APIRouter(prefix=API)
#: the span the pipeline view covers when none is asked for
PIPELINE_SPAN_S = 300.0
#: the most samples one pipeline view reads (the latest ones of the span)
PIPELINE_MAX_SAMPLES = 200_000


@router.post(
    "/apps",
    status_code=201,
    response_model=RegisteredAppOut,
    responses=errors(400, 401, 403, 409, 413, 422, 503),
)
def register(body: AppIn, server: ServerDep, caller: Caller) -> dict[str, Any]:
    """Register an application: a pipeline of ``stages``, or the one-stage form (``models``,
    optionally ``services``), in ``domain`` (``default`` if none; the admin token or a key
    with ``write`` there). The reply has the ids of the app, its stages and its services,
    and the app's token (shown only here)."""
    return server.register(body, caller)


@router.get("/apps", response_model=list[AppOut], responses=errors(503))
def apps(server: ServerDep) -> list[dict[str, Any]]:
    return [app_view(server, a) for a in server.store.apps()]


@router.get("/apps/{name}", response_model=AppOut, responses=errors(404, 422, 503))
def app_detail(app: KnownApp, server: ServerDep) -> dict[str, Any]:
    """The application's structure: stages in topological order, their services, the
    models each may serve, and the instances that registered (with their nodes)."""
    return app_view(server, app)


@router.post(
    "/apps/{name}/services/{service}/instances",
    status_code=201,
    response_model=InstanceOut,
    responses=errors(400, 401, 403, 404, 413, 422, 503),
)
def register_instance(
    app: AppAuth, service: Name, body: InstanceIn, server: ServerDep
) -> dict[str, Any]:
    """An instance of a service says it runs, and on which node; again, to move it."""
    return instance_view(server.register_instance(app, service, body))


@router.get(
    "/apps/{name}/pipeline",
    response_model=PipelineOut,
    responses=errors(404, 422, 503),
)
async def pipeline(
    app: KnownApp,
    server: ServerDep,
    start: float | None = Query(default=None, allow_inf_nan=False),
    end: float | None = Query(default=None, allow_inf_nan=False),
    span: float = Query(default=PIPELINE_SPAN_S, gt=0, le=30 * 86400),
) -> dict[str, Any]:
    """Signals over [start, end) (by default the last ``span`` seconds): per service, per
    stage, and end to end over the requests' traces."""
    return await run_in_threadpool(_pipeline, server, app, start, end, span)


def _pipeline(
    server: Server, app: App, start: float | None, end: float | None, span: float
) -> dict[str, Any]:
    end = server.clock() if end is None else end
    start = end - span if start is None else start
    rows = list(server.store.telemetry(app, start, end, latest=PIPELINE_MAX_SAMPLES))
    summary = summarize_pipeline(app.structure, rows)
    serving = {}
    for service in app.services:
        loop = server.loop(app, service)
        serving[service] = None if loop is None else loop.knowledge.active_model
    return {
        "start": start,
        "end": end,
        "samples": len(rows),
        "services": {k: finite_row(v) for k, v in summary.services.items()},
        "stages": {k: finite_row(v) for k, v in summary.stages.items()},
        "end_to_end": finite_row(summary.end_to_end),
        "instances": summary.instances,
        "models": summary.models,
        "serving": serving,
    }


def app_view(server: Server, app: App) -> dict[str, Any]:
    """The application with its structure and registered instances."""
    instances = server.store.instances(app)
    return {
        "id": app.id,
        "name": app.name,
        "owner": app.owner,
        "models": app.models,
        "stages": [
            {
                "id": app.stage_ids[stage.name],
                "name": stage.name,
                "after": stage.after,
                "services": [
                    {
                        "id": app.service_ids[service.name],
                        "name": service.name,
                        "models": service.models,
                        "effector_url": app.effector_url_of(service.name),
                        "instances": [
                            instance_view(i) for i in instances if i.service == service.name
                        ],
                    }
                    for service in stage.services
                ],
            }
            for stage in app.structure.stages
        ],
        "effector_url": app.effector_url,
        "created": app.created,
        "domain": app.domain,
    }


def instance_view(instance: Instance) -> dict[str, Any]:
    return dict(instance.__dict__)
