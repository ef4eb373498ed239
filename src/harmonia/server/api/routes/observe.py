"""Watching an application: its closed windows, and the live event stream (SSE)."""

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse

from harmonia.server.api import API
from harmonia.server.api.deps import KnownApp, ServerDep, bearer_token, clamp_limit
from harmonia.server.errors import Unavailable
from harmonia.server.fields import Name
from harmonia.server.observe import TooManySubscribers
from harmonia.server.openapi import errors, text_reply
from harmonia.server.schemas import WindowOut
from harmonia.store.downsample import MAX_POINTS

router = APIRouter(prefix=API)


@router.get(
    "/apps/{name}/windows",
    response_model=list[WindowOut],
    responses=errors(404, 422, 503),
)
def windows(
    app: KnownApp,
    server: ServerDep,
    start: float | None = None,
    end: float | None = None,
    limit: int = 100,
    service: Name | None = None,
    points: Annotated[int | None, Query(ge=1, le=MAX_POINTS)] = None,
) -> list[dict[str, Any]]:
    """Closed windows ending in [start, end), of every service or of one, oldest first (the
    latest ``limit``).

    With ``points``, the whole range in at most that many points, for a chart (``limit`` is
    then ignored): the windows themselves if the range holds no more, else each service's
    range cut into equal spans of time, each answered as one point that aggregates the
    windows that ended in it (``downsampled: true``, ``windows``: how many; sample-weighted
    means, the maximum of tail percentiles and drift, sums of counts; see
    `harmonia.store.downsample`). A chart of thirty days then costs one request of a
    bounded size, not thousands of windows."""
    if points is not None:
        return server.store.downsampled_windows(app, start, end, points, service=service)
    return server.store.windows(app, start, end, clamp_limit(limit), service=service)


@router.get(
    "/apps/{name}/stream",
    response_class=StreamingResponse,
    responses={
        200: text_reply("text/event-stream", "Events: telemetry, window, action"),
        **errors(401, 403, 404, 422, 503),
    },
)
async def stream(
    app: KnownApp, server: ServerDep, authorization: Annotated[str | None, Header()] = None
) -> Any:
    """Server-sent events of the app: ``window`` and ``action`` for anyone (what the
    windows and actions routes show), ``telemetry`` (raw samples) only with the app's or
    the admin token, like the export. Subscribers are capped; a slow one is dropped."""
    token = bearer_token(authorization)
    if token is not None:
        server.authorize(app.name, token, "read")  # a wrong token is refused, not downgraded
    try:
        subscription = server.events.subscribe(app.name, raw=token is not None)
    except TooManySubscribers as error:
        raise Unavailable(str(error)) from None
    return StreamingResponse(
        server.events.stream(subscription),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
