"""Liveness and Prometheus metrics."""

from fastapi import APIRouter
from fastapi.responses import Response

from harmonia.server.api.deps import ServerDep
from harmonia.server.observe import prometheus
from harmonia.server.schemas import HealthOut, errors, text_reply

router = APIRouter()


@router.get("/healthz", response_model=HealthOut)
async def health() -> dict[str, str]:
    # async: answered on the event loop, never queued behind the thread pool
    return {"status": "ok"}


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: text_reply("text/plain; version=0.0.4", "Prometheus text format"),
        **errors(503),
    },
)
def metrics(server: ServerDep) -> Response:
    gauges = {}
    for app in server.store.apps():
        for service, loop in server.loops(app).items():
            if loop.knowledge.summaries:
                gauges[app.name, service] = dict(loop.knowledge.summaries[-1].signals)
    return Response(prometheus(server.counters, gauges), media_type="text/plain; version=0.0.4")
