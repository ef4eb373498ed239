"""The Harmonia server: a FastAPI app over the store and one live loop per application.

Writes need a token: the admin token, or the application's own for its telemetry, policy and
action results. Every 4xx body is JSON that names what is wrong. Bodies are size-limited.
"""

import secrets
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal, NotRequired

import orjson
from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, with_config
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send
from typing_extensions import TypedDict

from harmonia.core.actions import Action
from harmonia.core.errors import Issue, PolicyError
from harmonia.core.knowledge import VersionInfo
from harmonia.core.monitor import WindowSummary
from harmonia.core.policy import Policy
from harmonia.policies import check_plugins, parse_policy_text
from harmonia.server.dashboard import add_dashboard_routes
from harmonia.server.delivery import Pusher
from harmonia.server.harmonica import add_harmonica_routes
from harmonia.server.loop import Ingested, LiveLoop
from harmonia.server.observe import (
    Broadcaster,
    Counters,
    finite_or_none,
    prometheus,
    telemetry_csv,
    telemetry_parquet,
)
from harmonia.store import (
    App,
    Conflict,
    NotFound,
    Store,
    StoredAction,
    StoredPolicy,
    StoredVersion,
    StoreError,
    hash_token,
)

API = "/api/v1"
MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_BATCH = 10_000
#: telemetry bodies up to this size are ingested on the event loop (about 30 samples)
INLINE_BODY_BYTES = 8 * 1024
SWITCH_INTERVAL_S = 0.001


class BodyLimit:
    """Refuse a body whose declared length is over ``limit`` before reading it (pure ASGI:
    Starlette's ``BaseHTTPMiddleware`` would cost about a millisecond per request)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for key, value in scope["headers"]:
                if key == b"content-length" and value.isdigit() and int(value) > self.limit:
                    reply = JSONResponse(
                        {"detail": f"request body over {self.limit} bytes"}, status_code=413
                    )
                    await reply(scope, receive, send)
                    return
        await self.app(scope, receive, send)


class JSONBody(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


# -- request bodies ----------------------------------------------------------------------------
class ServiceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=128)
    instances: list[str] = Field(default_factory=list)


class AppIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64)
    owner: str = Field(min_length=1, max_length=128)
    models: list[str] = Field(min_length=1)
    services: list[ServiceIn] = Field(default_factory=list)
    effector_url: str | None = Field(default=None, pattern=r"^https?://", max_length=512)


Finite = Annotated[float, Field(allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Name = Annotated[str, Field(min_length=1, max_length=128)]


@with_config(ConfigDict(extra="forbid"))
class SampleIn(TypedDict):
    """One telemetry sample as the sdk sends it (the app and instance come with the batch).

    A TypedDict, not a model: pydantic-core validates it straight from JSON into the dict the
    store inserts, several times faster than building and dumping a model per sample.
    """

    model: Name
    ts: Finite
    service: NotRequired[Name]
    model_version: NotRequired[Annotated[int, Field(ge=1)] | None]
    latency_ms: NotRequired[NonNegative | None]
    energy_j: NotRequired[NonNegative | None]
    energy_source: NotRequired[Annotated[str, Field(max_length=32)] | None]
    prediction: NotRequired[Finite | None]
    target: NotRequired[Finite | None]
    drift_value: NotRequired[Finite | None]
    metrics: NotRequired[dict[str, Finite]]


@with_config(ConfigDict(extra="forbid"))
class BatchIn(TypedDict):
    instance: NotRequired[Name]
    samples: Annotated[list[SampleIn], Field(min_length=1, max_length=MAX_BATCH)]


SAMPLE_DEFAULTS: dict[str, Any] = {
    "service": "default",
    "model_version": None,
    "latency_ms": None,
    "energy_j": None,
    "energy_source": None,
    "prediction": None,
    "target": None,
    "drift_value": None,
    "metrics": {},
}


class VersionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    fingerprint: list[Finite] = Field(default_factory=list, max_length=4096)
    details: dict[Name, Finite | bool | Annotated[str, Field(max_length=500)] | None] = Field(
        default_factory=dict, max_length=100
    )
    created: Finite | None = None


class ResultIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["applied", "failed"]
    reason: str = Field(default="", max_length=2000)


BATCH = TypeAdapter(BatchIn)


def field_errors(error: ValidationError | RequestValidationError) -> list[dict[str, Any]]:
    """Pydantic's errors as {field, reason}: ``samples[3].energy_j``."""
    out = []
    for item in error.errors():
        path = ""
        for part in item["loc"]:
            if part == "body":
                continue
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        out.append({"field": path, "reason": str(item["msg"]).removeprefix("Value error, ")})
    return out


class Server:
    """State shared by the routes: the store, the live loops and the admin token."""

    def __init__(self, store: Store, admin_token: str, clock: Callable[[], float] = time.time):
        self.store = store
        self.admin_token = admin_token
        self.clock = clock
        self._loops: dict[str, LiveLoop] = {}
        self._apps: dict[str, App] = {}
        self._tokens: dict[str, str] = {}
        self._lock = threading.Lock()
        self.events = Broadcaster()
        self.pusher = Pusher(store, on_finish=self.action_changed)
        self.counters = Counters()

    def app(self, name: str) -> App:
        cached = self._apps.get(name)
        if cached is None:
            cached = self._apps[name] = self.store.app(name)
        return cached

    def app_token(self, name: str, token: str) -> bool:
        """Whether ``token`` is the app's; a verified token is remembered (as its hash)."""
        digest = hash_token(token)
        if self._tokens.get(name) == digest:
            return True
        if self.store.check_token(name, token):
            self._tokens[name] = digest
            return True
        return False

    def known(self, name: str) -> App:
        """The registered app named ``name``, or a 404 that says so."""
        try:
            return self.app(name)
        except NotFound as error:
            raise HTTPException(404, str(error)) from None

    def authorize(self, name: str, token: str | None) -> App:
        """The app, if ``token`` is its own or the admin's; else a 401, 403 or 404."""
        app = self.known(name)
        if token is None:
            raise HTTPException(401, "missing token: send Authorization: Bearer <token>")
        if not (secrets.compare_digest(token, self.admin_token) or self.app_token(name, token)):
            raise HTTPException(403, f"this token is not valid for {name!r}")
        return app

    def ingest(self, app: App, body: bytes | dict[str, Any]) -> dict[str, Any]:
        """Validate the whole batch, let the loop decide, then store the batch, the decisions
        and the delivery in one transaction (one commit per request)."""
        try:
            batch = (
                BATCH.validate_json(body)
                if isinstance(body, bytes)
                else BATCH.validate_python(body, strict=False)
            )
        except ValidationError as error:
            self.counters.rejected_batch(app.name)
            raise HTTPException(422, field_errors(error)) from None
        instance = batch.get("instance", "default")
        extra = {"app": app.name, "instance": instance, "input_summary": None}
        rows = [{**SAMPLE_DEFAULTS, **sample, **extra} for sample in batch["samples"]]
        loop = self.loop(app)
        decided = loop.ingest(rows) if loop is not None else Ingested([], [])
        windows = [_window_view(w) for w in decided.windows]
        accepted, stored, delivered = self.store.ingest(
            app,
            rows,
            [_action_row(a) for a in decided.actions],
            pull=not app.effector_url,
            windows=windows,
        )
        self.counters.ingested(app.name, accepted)
        self.events.publish(
            app.name,
            "telemetry",
            {"instance": instance, "count": accepted, "last": _finite_row(rows[-1])},
        )
        for window in windows[-10:]:
            self.events.publish(app.name, "window", window)
        if stored:
            self.counters.decided(app.name, (a.kind for a in stored))
            for action in stored:
                self.events.publish(app.name, "action", action.__dict__)
            if app.effector_url:
                self.pusher.submit(app, stored)
        return {"accepted": accepted, "actions": [a.message() for a in delivered]}

    def finish_action(self, app: App, action_id: int, result: ResultIn) -> dict[str, Any]:
        """What the managed system did with an action: applied or failed, and why."""
        try:
            action = self.store.finish_action(app, action_id, result.status, result.reason)
        except NotFound as error:
            raise HTTPException(404, str(error)) from None
        except Conflict as error:
            raise HTTPException(409, str(error)) from None
        self.action_changed(app, action)
        return {"id": action.id, "status": action.status}

    def action_changed(self, app: App, action: StoredAction) -> None:
        """An action moved on in its lifecycle: the event stream says so, and a failed one
        may be decided again."""
        self.events.publish(app.name, "action", action.__dict__)
        if action.status == "failed":
            loop = self._loops.get(app.name)
            if loop is not None:
                loop.action_failed()

    def describe_version(
        self, app: App, model: str, version: int, description: VersionIn
    ) -> dict[str, Any]:
        """Store what the system says of a model version and tell its loop."""
        try:
            stored = self.store.put_version(
                app,
                model,
                version,
                fingerprint=description.fingerprint,
                details=description.details,
                created=description.created,
            )
        except StoreError as error:
            raise HTTPException(422, [{"field": "model", "reason": str(error)}]) from None
        loop = self.loop(app)
        if loop is not None:
            loop.describe_version(_version_info(stored))
        return _version_view(stored)

    def loop(self, app: App) -> LiveLoop | None:
        with self._lock:
            loop = self._loops.get(app.name)
            if loop is None:
                stored = self.store.policy(app)
                if stored is None:
                    return None
                policy = parse_policy_text(orjson.dumps(stored.document).decode())
                loop = self._loops[app.name] = self._new_loop(app, policy)
            return loop

    def _new_loop(self, app: App, policy: Policy) -> LiveLoop:
        """A loop that knows the versions the app described before (e.g. before a restart)."""
        loop = LiveLoop(app.name, policy, clock=self.clock)
        for version in self.store.versions(app):
            loop.describe_version(_version_info(version))
        return loop

    def apply_policy(self, app: App, text: str) -> StoredPolicy:
        """Validate a policy for ``app``, store it as a new version and put it in force;
        `PolicyError` lists every issue with its field."""
        policy = parse_policy_text(text, "request body")
        check_plugins(policy)
        issues = []
        if policy.system != app.name:
            issues.append(Issue("system", f"is {policy.system!r}, not {app.name!r}"))
        unknown = sorted(set(policy.models) - set(app.models))
        if unknown:
            issues.append(Issue("models", f"{app.name} cannot serve {', '.join(unknown)}"))
        if issues:
            raise PolicyError(issues)
        stored = self.store.add_policy(app, policy.model_dump(mode="json", exclude_none=True))
        self.set_policy(app, policy)
        return stored

    def set_policy(self, app: App, policy: Policy) -> None:
        with self._lock:
            loop = self._loops.get(app.name)
            if loop is None:
                self._loops[app.name] = self._new_loop(app, policy)
            else:
                loop.replace_policy(policy)


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
) -> FastAPI:
    """The ASGI application; ``data_dir`` holds what the dashboard starts (runs, experiments);
    with ``mqtt_url`` (``mqtt://host:1883``) or ``amqp_url`` (``amqp://user:pw@host:5672/``)
    probes may also report through that broker."""
    server = Server(store, admin_token, clock)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # A thread holding the GIL keeps it for up to the switch interval (5 ms) while
        # another waits: a small violating batch on the event loop would wait that long
        # behind a big batch in the pool. 1 ms keeps that wait short, at little cost.
        interval = sys.getswitchinterval()
        sys.setswitchinterval(min(interval, SWITCH_INTERVAL_S))
        await server.pusher.start()
        bridges: list[Any] = []  # brokers' clients are imported only when asked for
        if mqtt_url:
            from harmonia.server.mqtt import MQTTBridge

            bridges.append(MQTTBridge(server, mqtt_url))
        if amqp_url:
            from harmonia.server.amqp import AMQPBridge

            bridges.append(AMQPBridge(server, amqp_url))
        for bridge in bridges:
            await run_in_threadpool(bridge.start)
        yield
        for bridge in bridges:
            await run_in_threadpool(bridge.stop)
        sys.setswitchinterval(interval)
        await server.pusher.close()
        await run_in_threadpool(runs.close)
        harmonica.client.close()

    api = FastAPI(
        title="Harmonia", version="0.1.0", default_response_class=JSONBody, lifespan=lifespan
    )
    api.state.server = server
    harmonica = add_harmonica_routes(api, store, admin_token)

    api.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)

    @api.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": field_errors(error)}, status_code=422)

    def admin(authorization: Annotated[str | None, Header()] = None) -> None:
        token = _bearer(authorization)
        if token is None or not secrets.compare_digest(token, server.admin_token):
            raise HTTPException(401, "this needs the admin token: Authorization: Bearer <token>")

    async def app_or_admin(name: str, authorization: Annotated[str | None, Header()] = None) -> App:
        # async: no thread-pool hop for a check that is a dictionary lookup once cached
        return server.authorize(name, _bearer(authorization))

    AppAuth = Annotated[App, Depends(app_or_admin)]

    async def known_app(name: str) -> App:
        return server.known(name)

    KnownApp = Annotated[App, Depends(known_app)]
    runs = add_dashboard_routes(api, server, admin, data_dir)

    @api.get("/healthz")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @api.post(f"{API}/apps", status_code=201, dependencies=[Depends(admin)])
    def register(body: AppIn) -> dict[str, Any]:
        try:
            app, token = store.create_app(
                body.name,
                body.owner,
                body.models,
                [s.model_dump() for s in body.services],
                body.effector_url,
            )
        except Conflict as error:
            raise HTTPException(409, str(error)) from None
        except StoreError as error:
            raise HTTPException(422, [{"field": "name", "reason": str(error)}]) from None
        return {"id": app.id, "name": app.name, "token": token}

    @api.get(f"{API}/apps")
    def apps() -> list[dict[str, Any]]:
        return [_app_view(a) for a in store.apps()]

    @api.get(f"{API}/apps/{{name}}")
    def app_detail(app: KnownApp) -> dict[str, Any]:
        return _app_view(app)

    @api.put(f"{API}/apps/{{name}}/policy", status_code=201)
    async def put_policy(app: AppAuth, request: Request) -> dict[str, Any]:
        text = (await request.body()).decode("utf-8", errors="replace")
        try:
            stored = await run_in_threadpool(server.apply_policy, app, text)
        except PolicyError as error:
            raise HTTPException(
                422, [{"field": i.path, "reason": i.reason} for i in error.issues]
            ) from None
        return {"app": app.name, "version": stored.version}

    @api.get(f"{API}/apps/{{name}}/policies")
    def policy_versions(app: KnownApp) -> list[dict[str, Any]]:
        """Every version of the app's policy, oldest first; the last is in force."""
        return [
            {"version": p.version, "document": p.document, "created": p.created}
            for p in store.policies(app)
        ]

    @api.get(f"{API}/apps/{{name}}/policy")
    def get_policy(app: KnownApp) -> dict[str, Any]:
        stored = store.policy(app)
        if stored is None:
            raise HTTPException(404, f"{app.name!r} has no policy yet")
        return {"version": stored.version, "document": stored.document, "created": stored.created}

    @api.post(f"{API}/apps/{{name}}/telemetry")
    async def telemetry(app: AppAuth, request: Request) -> dict[str, Any]:
        body = await request.body()
        if len(body) <= INLINE_BODY_BYTES:
            # A small batch (a probe flushing a few samples, a violation to act on) costs
            # less than the two thread wake-ups of the pool's hop: handle it here.
            return server.ingest(app, body)
        # A big batch runs in the thread pool, so the event loop keeps accepting meanwhile.
        return await run_in_threadpool(server.ingest, app, body)

    @api.post(f"{API}/apps/{{name}}/actions/{{action_id}}/result")
    def action_result(app: AppAuth, action_id: int, body: ResultIn) -> dict[str, Any]:
        return server.finish_action(app, action_id, body)

    @api.get(f"{API}/apps/{{name}}/actions")
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
            raise HTTPException(422, [{"field": "status", "reason": str(error)}]) from None
        return [a.__dict__ for a in found]

    @api.get(f"{API}/apps/{{name}}/windows")
    def windows(
        app: KnownApp, start: float | None = None, end: float | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Closed windows ending in [start, end), oldest first (the latest ``limit``)."""
        return store.windows(app, start, end, _limit(limit))

    @api.put(f"{API}/apps/{{name}}/models/{{model}}/versions/{{version}}", status_code=201)
    def put_version(app: AppAuth, model: str, version: int, body: VersionIn) -> dict[str, Any]:
        """The managed system describes one of its model versions (held-out quality, energy
        per inference, training cost, the fingerprint of its training data)."""
        return server.describe_version(app, model, version, body)

    @api.get(f"{API}/apps/{{name}}/models")
    def models(app: KnownApp) -> list[dict[str, Any]]:
        """Each model the app can serve: the versions it described, which one is current,
        whether it is in service, and what it achieved in the windows it served."""
        described = store.versions(app)
        loop = server.loop(app)
        out = []
        for model in app.models:
            view: dict[str, Any] = {
                "model": model,
                "versions": [_version_view(v) for v in described if v.model == model],
                "in_service": False,
                "current_version": None,
                "profile": None,
            }
            if loop is not None and model in loop.knowledge.models:
                with loop.lock:
                    knowledge = loop.knowledge
                    view["in_service"] = knowledge.active_model == model
                    view["current_version"] = knowledge.current_versions[model]
                    view["profile"] = _finite_row(dict(knowledge.profiles[model].__dict__))
            out.append(view)
        return out

    @api.get(f"{API}/apps/{{name}}/telemetry.csv")
    def export_csv(app: AppAuth, start: float | None = None, end: float | None = None) -> Any:
        return StreamingResponse(
            telemetry_csv(store.telemetry(app, start, end)),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{app.name}-telemetry.csv"'},
        )

    @api.get(f"{API}/apps/{{name}}/telemetry.parquet")
    def export_parquet(app: AppAuth, start: float | None = None, end: float | None = None) -> Any:
        return Response(
            telemetry_parquet(store.telemetry(app, start, end)),
            media_type="application/vnd.apache.parquet",
            headers={"Content-Disposition": f'attachment; filename="{app.name}-telemetry.parquet"'},
        )

    @api.get(f"{API}/apps/{{name}}/stream")
    async def stream(app: KnownApp) -> Any:
        return StreamingResponse(
            server.events.subscribe(app.name),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @api.get("/metrics")
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


def _version_info(version: StoredVersion) -> VersionInfo:
    return VersionInfo(
        version.model, version.version, version.fingerprint, version.created, version.details
    )


def _version_view(version: StoredVersion) -> dict[str, Any]:
    return {
        "model": version.model,
        "version": version.version,
        "created": version.created,
        "details": version.details,
        "fingerprint_size": len(version.fingerprint),
    }


def _window_view(summary: WindowSummary) -> dict[str, Any]:
    return {
        "start": summary.start,
        "end": summary.end,
        "model": summary.model,
        "version": summary.version,
        "count": summary.count,
        "signals": {k: finite_or_none(v) for k, v in summary.signals.items()},
    }


def _finite_row(row: dict[str, Any]) -> dict[str, Any]:
    return {k: finite_or_none(v) for k, v in row.items()}


def _action_row(action: Action) -> dict[str, Any]:
    return {
        "kind": action.kind.value,
        "model": action.model,
        "version": action.version,
        "ts": action.ts,
        "strategy": action.strategy,
        "reason": action.reason[:2000],
        "trigger": action.trigger[:500],
        "values": action.values,
        "context": {k: finite_or_none(v) for k, v in action.context.items()},
    }
