"""The Harmonia server's HTTP face: the FastAPI app, its routes and exception handlers, over
the service layer (`harmonia.server.service`) and its middleware (`harmonia.server.middleware`).

Writes need a token: the admin token, or the application's own for its telemetry, policy and
action results. Every 4xx body is JSON that names what is wrong. Bodies are size-limited.
"""

import gc
import logging
import secrets
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response, StreamingResponse
from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool

from harmonia.plugins import DRIFT_DETECTORS, STRATEGIES, load_plugin, plugin_names
from harmonia.policies import MAX_POLICY_BYTES
from harmonia.server.dashboard import add_dashboard_routes
from harmonia.server.errors import (
    DOMAIN_ERRORS,
    Invalid,
    Unauthorized,
    Unavailable,
    status_of,
)
from harmonia.server.fields import (
    ActionId,
    VersionPath,
)
from harmonia.server.harmonica import add_harmonica_routes
from harmonia.server.middleware import BodyLimit
from harmonia.server.observe import (
    TooManySubscribers,
    prometheus,
    telemetry_csv,
    telemetry_parquet,
)
from harmonia.server.schemas import (
    BATCH,
    BATCH_EXAMPLE,
    POLICY_BODY,
    ActionOut,
    ActionResultOut,
    AppIn,
    AppOut,
    HealthOut,
    ModelOut,
    PolicyOut,
    PolicyStoredOut,
    RegisteredAppOut,
    ResultIn,
    TelemetryOut,
    VersionIn,
    VersionOut,
    WindowOut,
    add_components,
    components_of,
    errors,
    field_errors,
    raw_body,
    text_reply,
)
from harmonia.server.service import Guards, Server, finite_row, version_view
from harmonia.store import (
    App,
    NotFound,
    Store,
    StoreError,
)

logger = logging.getLogger("harmonia.server")

API = "/api/v1"
MAX_BODY_BYTES = 8 * 1024 * 1024
#: any other body: policies, registrations, descriptions, Harmonica's messages
MAX_DOCUMENT_BYTES = MAX_POLICY_BYTES
#: telemetry bodies up to this size are ingested on the event loop (about 30 samples)
INLINE_BODY_BYTES = 8 * 1024
SWITCH_INTERVAL_S = 0.001


class JSONBody(JSONResponse):
    """JSON written by orjson. A `JSONResponse` so that FastAPI documents each route's reply
    with its model (it shows any other response class as a string)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def _freeze_what_lives_long() -> None:
    """Import every installed strategy and drift detector (a loop imports them when its
    policy arrives), then move everything alive out of the collector's sight. Otherwise each
    full collection walks ~100k objects, modules' functions mostly, while every request
    waits: 50-150 ms on a small VM, every few seconds under load."""
    for group in (STRATEGIES, DRIFT_DETECTORS):
        for name in plugin_names(group):
            try:
                load_plugin(group, name)
            except Exception:  # a broken plugin fails where it is used, with its reason
                logger.debug("plugin %s %s did not load", group, name, exc_info=True)
    gc.collect()
    gc.freeze()


def _bearer(authorization: str | None) -> str | None:
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return None


def create_app(
    store: Store,
    admin_token: str,
    *,
    clock: Callable[[], float] = time.time,
    data_dir: Path = Path(".harmonia"),
    mqtt_url: str = "",
    amqp_url: str = "",
    guards: Guards | None = None,
) -> FastAPI:
    """The ASGI application; ``data_dir`` holds what the dashboard starts (runs, experiments);
    with ``mqtt_url`` (``mqtt://host:1883``) or ``amqp_url`` (``amqp://user:pw@host:5672/``)
    probes may also report through that broker; ``guards`` relax the safe defaults."""
    server = Server(store, admin_token, clock, guards)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # A thread holding the GIL keeps it for up to the switch interval (5 ms) while
        # another waits: a small violating batch on the event loop would wait that long
        # behind a big batch in the pool. 1 ms keeps that wait short, at little cost.
        interval = sys.getswitchinterval()
        sys.setswitchinterval(min(interval, SWITCH_INTERVAL_S))
        await server.outbox.start()
        await run_in_threadpool(server.resume_pushes)
        bridges: list[Any] = []  # brokers' clients are imported only when asked for
        if mqtt_url:
            from harmonia.server.mqtt import MQTTBridge

            bridges.append(MQTTBridge(server, mqtt_url))
        if amqp_url:
            from harmonia.server.amqp import AMQPBridge

            bridges.append(AMQPBridge(server, amqp_url))
        for bridge in bridges:
            await run_in_threadpool(bridge.start)
        await run_in_threadpool(_freeze_what_lives_long)
        yield
        for bridge in bridges:
            await run_in_threadpool(bridge.stop)
        sys.setswitchinterval(interval)
        await server.outbox.close()
        await run_in_threadpool(runs.close)
        server.validator.close()

    api = FastAPI(
        title="Harmonia", version="0.1.0", default_response_class=JSONBody, lifespan=lifespan
    )
    api.state.server = server
    add_components(api, components_of(BATCH, "BatchIn"))
    add_harmonica_routes(api, server)

    api.add_middleware(BodyLimit, limit=MAX_BODY_BYTES, document_limit=MAX_DOCUMENT_BYTES)
    if server.guards.cors_origins:
        api.add_middleware(
            CORSMiddleware,
            allow_origins=list(server.guards.cors_origins),
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
        )

    @api.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": field_errors(error)}, status_code=422)

    async def domain_error(_: Request, error: Exception) -> JSONResponse:
        status, detail = status_of(error)
        # over the size limit: the client may still be sending; this connection ends here
        headers = {"Connection": "close"} if status == 413 else None
        return JSONResponse({"detail": detail}, status_code=status, headers=headers)

    for kind in DOMAIN_ERRORS:
        api.add_exception_handler(kind, domain_error)

    @api.exception_handler(OperationalError)
    async def database_down(_: Request, error: OperationalError) -> JSONResponse:
        logger.error("the database failed: %s", error)
        return JSONResponse({"detail": "the database is unavailable; retry"}, status_code=503)

    def admin(authorization: Annotated[str | None, Header()] = None) -> None:
        token = _bearer(authorization)
        if token is None or not secrets.compare_digest(token, server.admin_token):
            raise Unauthorized("this needs the admin token: Authorization: Bearer <token>")

    async def app_or_admin(name: str, authorization: Annotated[str | None, Header()] = None) -> App:
        # async: no thread-pool hop for a check that is a dictionary lookup once cached
        return server.authorize(name, _bearer(authorization))

    AppAuth = Annotated[App, Depends(app_or_admin)]

    async def known_app(name: str) -> App:
        return server.app(name)

    KnownApp = Annotated[App, Depends(known_app)]
    runs = add_dashboard_routes(api, server, admin, data_dir)

    @api.get("/healthz", response_model=HealthOut)
    async def health() -> dict[str, str]:
        # async: answered on the event loop, never queued behind the thread pool
        return {"status": "ok"}

    @api.post(
        f"{API}/apps",
        status_code=201,
        dependencies=[Depends(admin)],
        response_model=RegisteredAppOut,
        responses=errors(400, 401, 409, 413, 422, 503),
    )
    def register(body: AppIn) -> dict[str, Any]:
        return server.register(body)

    @api.get(f"{API}/apps", response_model=list[AppOut], responses=errors(503))
    def apps() -> list[dict[str, Any]]:
        return [_app_view(a) for a in store.apps()]

    @api.get(f"{API}/apps/{{name}}", response_model=AppOut, responses=errors(404, 422, 503))
    def app_detail(app: KnownApp) -> dict[str, Any]:
        return _app_view(app)

    @api.put(
        f"{API}/apps/{{name}}/policy",
        status_code=201,
        response_model=PolicyStoredOut,
        responses=errors(401, 403, 404, 413, 422, 503),
        openapi_extra=POLICY_BODY,
    )
    async def put_policy(app: AppAuth, request: Request) -> dict[str, Any]:
        # the body limit applies (`BodyLimit`); parsing is bounded and off the event loop
        text = (await request.body()).decode("utf-8", errors="replace")
        stored = await run_in_threadpool(server.apply_policy, app, text)
        return {"app": app.name, "version": stored.version}

    @api.get(
        f"{API}/apps/{{name}}/policies",
        response_model=list[PolicyOut],
        responses=errors(404, 422, 503),
    )
    def policy_versions(app: KnownApp) -> list[dict[str, Any]]:
        """Every version of the app's policy, oldest first; the last is in force."""
        return [
            {"version": p.version, "document": p.document, "created": p.created}
            for p in store.policies(app)
        ]

    @api.get(
        f"{API}/apps/{{name}}/policy", response_model=PolicyOut, responses=errors(404, 422, 503)
    )
    def get_policy(app: KnownApp) -> dict[str, Any]:
        stored = store.policy(app)
        if stored is None:
            raise NotFound(f"{app.name!r} has no policy yet")
        return {"version": stored.version, "document": stored.document, "created": stored.created}

    @api.post(
        f"{API}/apps/{{name}}/telemetry",
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

    @api.post(
        f"{API}/apps/{{name}}/actions/{{action_id}}/result",
        response_model=ActionResultOut,
        responses=errors(400, 401, 403, 404, 409, 413, 422, 503),
    )
    def action_result(app: AppAuth, action_id: ActionId, body: ResultIn) -> dict[str, Any]:
        return server.finish_action(app, action_id, body)

    @api.get(
        f"{API}/apps/{{name}}/actions",
        response_model=list[ActionOut],
        responses=errors(404, 422, 503),
    )
    def actions(
        app: KnownApp,
        status: str | None = None,
        start: float | None = None,
        end: float | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Adaptation events, newest first: each action with the boundary that fired it
        (``trigger``), the values it read, the strategy's reasoning and its outcome."""
        try:
            found = store.actions(app, status, _limit(limit), start, end)
        except StoreError as error:
            raise Invalid([{"field": "status", "reason": str(error)}]) from None
        return [a.__dict__ for a in found]

    @api.get(
        f"{API}/apps/{{name}}/windows",
        response_model=list[WindowOut],
        responses=errors(404, 422, 503),
    )
    def windows(
        app: KnownApp, start: float | None = None, end: float | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Closed windows ending in [start, end), oldest first (the latest ``limit``)."""
        return store.windows(app, start, end, _limit(limit))

    @api.put(
        f"{API}/apps/{{name}}/models/{{model}}/versions/{{version}}",
        status_code=201,
        response_model=VersionOut,
        responses=errors(400, 401, 403, 404, 413, 422, 503),
    )
    def put_version(
        app: AppAuth, model: str, version: VersionPath, body: VersionIn
    ) -> dict[str, Any]:
        """The managed system describes one of its model versions (held-out quality, energy
        per inference, training cost, the fingerprint of its training data)."""
        return server.describe_version(app, model, version, body)

    @api.get(
        f"{API}/apps/{{name}}/models",
        response_model=list[ModelOut],
        responses=errors(404, 422, 503),
    )
    def models(app: KnownApp) -> list[dict[str, Any]]:
        """Each model the app can serve: the versions it described, which one is current,
        whether it is in service, and what it achieved in the windows it served."""
        described = store.versions(app)
        loop = server.loop(app)
        out = []
        for model in app.models:
            view: dict[str, Any] = {
                "model": model,
                "versions": [version_view(v) for v in described if v.model == model],
                "in_service": False,
                "current_version": None,
                "profile": None,
            }
            if loop is not None and model in loop.knowledge.models:
                with loop.lock:
                    knowledge = loop.knowledge
                    view["in_service"] = knowledge.active_model == model
                    view["current_version"] = knowledge.current_versions[model]
                    view["profile"] = finite_row(dict(knowledge.profiles[model].__dict__))
            out.append(view)
        return out

    @api.get(
        f"{API}/apps/{{name}}/telemetry.csv",
        response_class=StreamingResponse,
        responses={
            200: text_reply("text/csv", "The samples in [start, end), oldest first"),
            **errors(401, 403, 404, 422, 503),
        },
    )
    def export_csv(app: AppAuth, start: float | None = None, end: float | None = None) -> Any:
        return StreamingResponse(
            telemetry_csv(store.telemetry(app, start, end)),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{app.name}-telemetry.csv"'},
        )

    @api.get(
        f"{API}/apps/{{name}}/telemetry.parquet",
        response_class=Response,
        responses={
            200: text_reply(
                "application/vnd.apache.parquet", "The samples in [start, end)", binary=True
            ),
            **errors(401, 403, 404, 422, 503),
        },
    )
    def export_parquet(app: AppAuth, start: float | None = None, end: float | None = None) -> Any:
        return Response(
            telemetry_parquet(store.telemetry(app, start, end)),
            media_type="application/vnd.apache.parquet",
            headers={"Content-Disposition": f'attachment; filename="{app.name}-telemetry.parquet"'},
        )

    @api.get(
        f"{API}/apps/{{name}}/stream",
        response_class=StreamingResponse,
        responses={
            200: text_reply("text/event-stream", "Events: telemetry, window, action"),
            **errors(401, 403, 404, 422, 503),
        },
    )
    async def stream(app: KnownApp, authorization: Annotated[str | None, Header()] = None) -> Any:
        """Server-sent events of the app: ``window`` and ``action`` for anyone (what the
        windows and actions routes show), ``telemetry`` (raw samples) only with the app's or
        the admin token, like the export. Subscribers are capped; a slow one is dropped."""
        token = _bearer(authorization)
        if token is not None:
            server.authorize(app.name, token)  # a wrong token is refused, not downgraded
        try:
            subscription = server.events.subscribe(app.name, raw=token is not None)
        except TooManySubscribers as error:
            raise Unavailable(str(error)) from None
        return StreamingResponse(
            server.events.stream(subscription),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @api.get(
        "/metrics",
        response_class=Response,
        responses={
            200: text_reply("text/plain; version=0.0.4", "Prometheus text format"),
            **errors(503),
        },
    )
    def metrics() -> Response:
        gauges = {}
        for app in store.apps():
            loop = server.loop(app)
            if loop is not None and loop.knowledge.summaries:
                gauges[app.name] = dict(loop.knowledge.summaries[-1].signals)
        return Response(prometheus(server.counters, gauges), media_type="text/plain; version=0.0.4")

    return api


def _app_view(app: App) -> dict[str, Any]:
    return {
        "id": app.id,
        "name": app.name,
        "owner": app.owner,
        "models": app.models,
        "services": app.services,
        "effector_url": app.effector_url,
        "created": app.created,
    }


def _limit(limit: int) -> int:
    return min(max(limit, 1), 1000)
