"""The Harmonia server: a FastAPI app over the store and one live loop per application.

Writes need a token: the admin token, or the application's own for its telemetry, policy and
action results. Every 4xx body is JSON that names what is wrong. Bodies are size-limited.
"""

import gc
import hashlib
import logging
import re
import secrets
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import (
    ValidationError,
)
from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from harmonia.core.actions import Action
from harmonia.core.errors import Issue, PolicyError
from harmonia.core.knowledge import VersionInfo
from harmonia.core.monitor import WindowSummary
from harmonia.core.policy import Policy
from harmonia.plugins import DRIFT_DETECTORS, STRATEGIES, load_plugin, plugin_names
from harmonia.policies import MAX_POLICY_BYTES, check_plugins, parse_policy_text
from harmonia.server.dashboard import add_dashboard_routes
from harmonia.server.delivery import Outbox, Pusher
from harmonia.server.errors import (
    DOMAIN_ERRORS,
    Forbidden,
    Invalid,
    TooLarge,
    Unauthorized,
    Unavailable,
    status_of,
)
from harmonia.server.fields import (
    APP_NAME_PATTERN,
    ActionId,
    VersionPath,
)
from harmonia.server.harmonica import add_harmonica_routes
from harmonia.server.loop import Ingested, LiveLoop
from harmonia.server.observe import (
    Broadcaster,
    Counters,
    TooManySubscribers,
    finite_or_none,
    prometheus,
    telemetry_csv,
    telemetry_parquet,
)
from harmonia.server.schemas import (
    BATCH,
    BATCH_EXAMPLE,
    POLICY_BODY,
    SAMPLE_DEFAULTS,
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
    SampleIn,
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
from harmonia.server.targets import TargetRefused, check_target
from harmonia.server.validation import BatchInvalid, BatchValidator
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

logger = logging.getLogger("harmonia.server")

API = "/api/v1"
MAX_BODY_BYTES = 8 * 1024 * 1024
#: any other body: policies, registrations, descriptions, Harmonica's messages
MAX_DOCUMENT_BYTES = MAX_POLICY_BYTES
#: telemetry bodies up to this size are ingested on the event loop (about 30 samples)
INLINE_BODY_BYTES = 8 * 1024
SWITCH_INTERVAL_S = 0.001
#: a push still pending when the server starts is pushed again if decided this recently
STALE_PUSH_SECONDS = 600.0
APP_NAME = re.compile(APP_NAME_PATTERN)
BATCH_KEY = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


class BodyLimit:
    """Refuse a body over its limit with 413: at once when its declared length is over, and,
    for a body streamed without one (chunked), as soon as the bytes received pass it (pure
    ASGI: Starlette's ``BaseHTTPMiddleware`` would cost about a millisecond per request).

    Telemetry batches may be ``limit`` bytes; every other body ``document_limit``: FastAPI
    parses a typed route's JSON body on the event loop, before checking any token.
    """

    def __init__(self, app: ASGIApp, limit: int, document_limit: int) -> None:
        self.app = app
        self.limit = limit
        self.document_limit = document_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        limit = self.limit if path.endswith("/telemetry") else self.document_limit
        for key, value in scope["headers"]:
            if key == b"content-length" and value.isdigit() and int(value) > limit:
                await _refuse(limit, scope, receive, send)
                return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise TooLarge(f"request body over {limit} bytes")
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except TooLarge:
            if started:
                raise
            await _refuse(limit, scope, receive, send)


async def _refuse(limit: int, scope: Scope, receive: Receive, send: Send) -> None:
    reply = JSONResponse(
        {"detail": f"request body over {limit} bytes"},
        status_code=413,
        headers={"Connection": "close"},  # the client may still be sending: it ends here
    )
    await reply(scope, receive, send)


class JSONBody(JSONResponse):
    """JSON written by orjson. A `JSONResponse` so that FastAPI documents each route's reply
    with its model (it shows any other response class as a string)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


@dataclass(frozen=True)
class Guards:
    """What the operator allows beyond the safe defaults (from `harmonia.settings.Settings`)."""

    #: origins whose pages may call the server from a browser (CORS), and reach Harmonica's
    #: routes without a token from loopback; empty: none
    cors_origins: tuple[str, ...] = ()
    #: whether effector and tactic URLs may be link-local or cloud-metadata addresses
    allow_link_local_targets: bool = False
    #: how far ahead of the server's clock a sample's ``ts`` may be, in seconds
    max_clock_skew_s: float = 300.0
    #: event-stream subscribers at once, per application and in all
    max_subscribers_per_app: int = 20
    max_subscribers: int = 200


class Server:
    """State shared by the routes: the store, the live loops and the admin token."""

    def __init__(
        self,
        store: Store,
        admin_token: str,
        clock: Callable[[], float] = time.time,
        guards: Guards | None = None,
    ):
        self.store = store
        self.admin_token = admin_token
        self.clock = clock
        self.guards = guards or Guards()
        self._loops: dict[str, LiveLoop] = {}
        self._apps: dict[str, App] = {}
        self._tokens: dict[str, str] = {}
        #: tokens the server issued to the runs it started, by app (hashes; in memory only)
        self._run_tokens: dict[str, set[str]] = {}
        self._lock = threading.Lock()
        self.events = Broadcaster(
            per_app=self.guards.max_subscribers_per_app, total=self.guards.max_subscribers
        )
        self.outbox = Outbox(allow_link_local=self.guards.allow_link_local_targets)
        self.validator = BatchValidator()
        self.pusher = Pusher(store, self.outbox, on_finish=self.action_changed)
        self.counters = Counters()

    def app(self, name: str) -> App:
        cached = self._apps.get(name)
        if cached is None:
            if not APP_NAME.match(name):  # never reaches the database (NUL, huge names)
                raise NotFound(f"no application named {name[:64]!r}")
            cached = self._apps[name] = self.store.app(name)
        return cached

    def app_token(self, name: str, token: str) -> bool:
        """Whether ``token`` is the app's; a verified token is remembered (as its hash)."""
        digest = hash_token(token)
        if self._tokens.get(name) == digest or digest in self._run_tokens.get(name, ()):
            return True
        if self.store.check_token(name, token):
            self._tokens[name] = digest
            return True
        return False

    def issue_run_token(self, name: str) -> str:
        """A token valid for app ``name`` only, for a run this server starts (never the admin
        token: a run's requests could be sent anywhere its URL points)."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._run_tokens.setdefault(name, set()).add(hash_token(token))
        return token

    def authorize(self, name: str, token: str | None) -> App:
        """The app, if ``token`` is its own or the admin's; else `Unauthorized`, `Forbidden`
        or `NotFound`."""
        app = self.app(name)
        if token is None:
            raise Unauthorized("missing token: send Authorization: Bearer <token>")
        if not (secrets.compare_digest(token, self.admin_token) or self.app_token(name, token)):
            raise Forbidden(f"this token is not valid for {name!r}")
        return app

    def register(self, body: AppIn) -> dict[str, Any]:
        """Register an application; its token is shown once, in the reply."""
        if body.effector_url is not None:
            try:
                check_target(
                    body.effector_url, allow_link_local=self.guards.allow_link_local_targets
                )
            except TargetRefused as error:
                raise Invalid([{"field": "effector_url", "reason": str(error)}]) from None
        try:
            app, token = self.store.create_app(
                body.name,
                body.owner,
                body.models,
                [s.model_dump() for s in body.services],
                body.effector_url,
            )
        except Conflict:  # a StoreError too, but a 409, not a 422
            raise
        except StoreError as error:
            raise Invalid([{"field": "name", "reason": str(error)}]) from None
        return {"id": app.id, "name": app.name, "token": token}

    def ingest(
        self, app: App, body: bytes | dict[str, Any], key: str | None = None
    ) -> dict[str, Any]:
        """Validate the whole batch, let the loop decide, then store the batch, the decisions
        and the delivery in one transaction (one commit per request).

        A batch whose idempotency ``key`` was stored already gets the reply it got then, and
        nothing is stored or decided again. If the store fails, the loop forgets everything
        the batch taught it (it is rebuilt from the store): a decision exists only once
        stored, and nothing the store refused can poison later batches.
        """
        keyed = None if key is None else (_batch_key(key), _digest(body))
        if keyed is not None:
            replayed = self._replayed(app, keyed)
            if replayed is not None:
                return replayed
        try:
            batch = (
                self.validator.validate(body)
                if isinstance(body, bytes)
                else BATCH.validate_python(body, strict=False)
            )
        except ValidationError as error:
            self.counters.rejected_batch(app.name)
            raise Invalid(field_errors(error)) from None
        except BatchInvalid as error:
            self.counters.rejected_batch(app.name)
            raise Invalid(error.issues) from None
        samples = batch["samples"]
        self._check_clock(app, samples)
        instance = batch.get("instance", "default")
        extra = {"app": app.name, "instance": instance, "input_summary": None}
        rows = [{**SAMPLE_DEFAULTS, **sample, **extra} for sample in samples]
        loop = self.loop(app)
        decided = loop.ingest(rows) if loop is not None else Ingested([], [])
        windows = [_window_view(w) for w in decided.windows]
        try:
            accepted, stored, delivered = self.store.ingest(
                app,
                rows,
                [_action_row(a) for a in decided.actions],
                pull=not app.effector_url,
                windows=windows,
                key=keyed,
            )
        except Conflict:  # the same key, stored meanwhile by a concurrent retry
            self.forget_loop(app)
            assert keyed is not None
            return self._replayed(app, keyed) or {"accepted": 0, "actions": []}
        except Exception:
            self.forget_loop(app)
            raise
        self.counters.ingested(app.name, accepted)
        self.events.publish(
            app.name,
            "telemetry",
            {"instance": instance, "count": accepted, "last": _finite_row(rows[-1])},
            raw=True,
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

    def _replayed(self, app: App, keyed: tuple[str, str]) -> dict[str, Any] | None:
        """The reply a batch stored under this key got; `Invalid` if the key was used for
        another batch (a client bug that would otherwise lose this one silently)."""
        stored = self.store.batch_reply(app, keyed[0])
        if stored is None:
            return None
        digest, reply = stored
        if digest != keyed[1]:
            reason = "was used for a different batch; send each batch under a key of its own"
            raise Invalid([{"field": "Idempotency-Key", "reason": reason}])
        return reply

    def _check_clock(self, app: App, samples: list[SampleIn]) -> None:
        """Refuse samples stamped too far ahead of the server's clock: a time window would
        wait for that moment to close, deciding nothing meanwhile."""
        latest = self.clock() + self.guards.max_clock_skew_s
        ahead = [
            {
                "field": f"samples[{i}].ts",
                "reason": f"is {s['ts'] - latest + self.guards.max_clock_skew_s:.0f} s ahead "
                f"of the server's clock (at most {self.guards.max_clock_skew_s:.0f} s allowed)",
            }
            for i, s in enumerate(samples)
            if s["ts"] > latest
        ]
        if ahead:
            self.counters.rejected_batch(app.name)
            raise Invalid(ahead[:20])

    def forget_loop(self, app: App) -> None:
        """Drop the app's live loop; the next request rebuilds it from the store."""
        with self._lock:
            self._loops.pop(app.name, None)

    def finish_action(self, app: App, action_id: int, result: ResultIn) -> dict[str, Any]:
        """What the managed system did with an action: applied or failed, and why."""
        action = self.store.finish_action(app, action_id, result.status, result.reason)
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

    def resume_pushes(self, *, stale_after: float = STALE_PUSH_SECONDS) -> None:
        """After a restart: push again what was pending for push applications (it may have
        been in flight when the server stopped), or fail it if it is too old to matter."""
        now = self.clock()
        for app in self.store.apps():
            if not app.effector_url:
                continue
            pending = sorted(self.store.actions(app, "pending"), key=lambda a: a.id)
            fresh = [a for a in pending if now - a.ts <= stale_after]
            for action in pending:
                if action not in fresh:
                    done = self.store.finish_action(
                        app,
                        action.id,
                        "failed",
                        f"the server restarted {now - action.ts:.0f} s after deciding it; "
                        "too old to push now",
                    )
                    self.action_changed(app, done)
            self.pusher.submit(app, fresh)

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
            raise Invalid([{"field": "model", "reason": str(error)}]) from None
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
        """A loop rebuilt from the store (after a restart, or after a failed write): the
        versions the app described, what it served last, the action still on its way."""
        loop = LiveLoop(app.name, policy, clock=self.clock)
        for version in self.store.versions(app):
            loop.describe_version(_version_info(version))
        open_actions = [
            a
            for status in ("pending", "delivered")
            for a in self.store.actions(app, status, limit=1)
        ]
        latest = max(open_actions, key=lambda a: a.id) if open_actions else None
        loop.restore(
            self.store.last_served(app),
            None if latest is None else (latest.kind, latest.model, latest.version),
        )
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


def _digest(body: bytes | dict[str, Any]) -> str:
    """sha256 of a batch as sent (bytes), or of its canonical JSON (a broker's dict)."""
    data = body if isinstance(body, bytes) else orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(data).hexdigest()


def _batch_key(key: str) -> str:
    if not BATCH_KEY.match(key):
        raise Invalid(
            [
                {
                    "field": "Idempotency-Key",
                    "reason": "use 1-128 letters, digits, '_', '.', ':', '-'",
                }
            ]
        )
    return key


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
