"""Telemetry: ingestion (the probes' hot path) and export as CSV or Parquet."""

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from harmonia.server.api import API
from harmonia.server.api.deps import AppAuth, AppRead, ServerDep
from harmonia.server.api.responses import JSONBody
from harmonia.server.fields import Name
from harmonia.server.observe import telemetry_csv, telemetry_parquet
from harmonia.server.openapi import errors, raw_body, text_reply
from harmonia.server.schemas import BATCH_EXAMPLE, TelemetryOut

#: telemetry bodies up to this size are ingested on the event loop (about 30 samples)
INLINE_BODY_BYTES = 8 * 1024

router = APIRouter(prefix=API)


@router.post(
    "/apps/{name}/telemetry",
    # documented, not validated: this is the ingestion path, and its reply is built here
    response_model=None,
    responses={
        200: {"model": TelemetryOut, "description": "Stored; the actions to carry out"},
        **errors(401, 403, 404, 413, 422, 503),
    },
    openapi_extra=raw_body("BatchIn", BATCH_EXAMPLE),
)
async def telemetry(
    app: AppAuth,
    request: Request,
    server: ServerDep,
    idempotency_key: Annotated[str | None, Header(max_length=128)] = None,
) -> JSONBody:
    # The reply goes out as a response, straight through orjson: FastAPI would pass a
    # returned dict through `jsonable_encoder` (15-100 µs a reply).
    body = await request.body()
    if len(body) <= INLINE_BODY_BYTES:
        # A small batch (a probe flushing a few samples, a violation to act on) costs
        # less than the two thread wake-ups of the pool's hop: handle it here.
        return JSONBody(server.ingest(app, body, idempotency_key))
    # A big batch runs in the thread pool, so the event loop keeps accepting meanwhile.
    return JSONBody(await run_in_threadpool(server.ingest, app, body, idempotency_key))


@router.get(
    "/apps/{name}/telemetry.csv",
    response_class=StreamingResponse,
    responses={
        200: text_reply(
            "text/csv", "The samples in [start, end) (of one service, or all), oldest first"
        ),
        **errors(401, 403, 404, 422, 503),
    },
)
def export_csv(
    app: AppRead,
    server: ServerDep,
    start: float | None = None,
    end: float | None = None,
    service: Name | None = None,
) -> Any:
    return StreamingResponse(
        telemetry_csv(server.store.telemetry(app, start, end, service=service)),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{app.name}-telemetry.csv"'},
    )


@router.get(
    "/apps/{name}/telemetry.parquet",
    response_class=Response,
    responses={
        200: text_reply(
            "application/vnd.apache.parquet",
            "The samples in [start, end) (of one service, or all)",
            binary=True,
        ),
        **errors(401, 403, 404, 422, 503),
    },
)
def export_parquet(
    app: AppRead,
    server: ServerDep,
    start: float | None = None,
    end: float | None = None,
    service: Name | None = None,
) -> Any:
    return Response(
        telemetry_parquet(server.store.telemetry(app, start, end, service=service)),
        media_type="application/vnd.apache.parquet",
        headers={"Content-Disposition": f'attachment; filename="{app.name}-telemetry.parquet"'},
    )
