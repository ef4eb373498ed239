"""The Harmonia server's HTTP face: the FastAPI app over the service layer
(`harmonia.server.service`), with its routes (`harmonia.server.api`), middleware
(`harmonia.server.middleware`) and exception handlers.

Writes need a token: the admin token, or the application's own for its telemetry, policy and
action results. Every 4xx body is JSON that names what is wrong. Bodies are size-limited.
"""

import asyncio
import gc
import logging
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter
from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool

from harmonia.compat.harmonica import routes as harmonica
from harmonia.compat.harmonica.cors import HarmonicaPreflight
from harmonia.compat.harmonica.tool import HarmonicaOptions
from harmonia.compat.hxmlops import routes as hxmlops
from harmonia.compat.qoa4ml import routes as qoa4ml
from harmonia.core.contracts import Contract
from harmonia.core.pipeline import CarbonIntensity
from harmonia.observation import ObserversConfig
from harmonia.plugins import DRIFT_DETECTORS, STRATEGIES, load_plugin, plugin_names
from harmonia.policies import MAX_POLICY_BYTES
from harmonia.registry.artifacts import ArtifactStore
from harmonia.registry.catalog import MAX_ARTIFACT_BYTES, Catalog
from harmonia.registry.local import LocalArtifactStore
from harmonia.server.api.main import ROUTERS
from harmonia.server.api.responses import JSONBody
from harmonia.server.api.routes.catalog import UPLOAD_PATH
from harmonia.server.bridges import bridges_for
from harmonia.server.catalog import CatalogService
from harmonia.server.errors import DOMAIN_ERRORS, status_of
from harmonia.server.leases import ReplicaOptions
from harmonia.server.middleware import BodyLimit
from harmonia.server.openapi import add_components, components_of
from harmonia.server.runs import Runs
from harmonia.server.schemas import BATCH, field_errors
from harmonia.server.service import Guards, Server
from harmonia.server.uploads import MAX_FIELD_BYTES
from harmonia.store import Store

logger = logging.getLogger("harmonia.server")

MAX_BODY_BYTES = 8 * 1024 * 1024
#: any other body: policies, registrations, descriptions, Harmonica's messages
MAX_DOCUMENT_BYTES = MAX_POLICY_BYTES
#: uploads of models and datasets, Harmonia's and HX-MLOps's: streamed, as large as an artifact
UPLOAD_PATHS = f"{UPLOAD_PATH}|{hxmlops.HX_UPLOAD_PATH}|{harmonica.UPLOAD_PATH}"
SWITCH_INTERVAL_S = 0.001
#: how often contracts are checked against the latest telemetry (seconds)
CONTRACT_CHECK_S = 10.0


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


def create_app(
    store: Store,
    admin_token: str,
    *,
    clock: Callable[[], float] = time.time,
    data_dir: Path = Path(".harmonia"),
    mqtt_url: str = "",
    amqp_url: str = "",
    guards: Guards | None = None,
    qoa4ml_options: "qoa4ml.QoA4MLOptions | None" = None,
    contract_check_s: float = CONTRACT_CHECK_S,
    carbon: CarbonIntensity | None = None,
    artifacts: ArtifactStore | None = None,
    max_artifact_bytes: int = MAX_ARTIFACT_BYTES,
    harmonica_options: "HarmonicaOptions | None" = None,
    replica: ReplicaOptions | None = None,
) -> FastAPI:
    """The ASGI application; ``data_dir`` holds what the dashboard starts (runs, experiments);
    with ``mqtt_url`` (``mqtt://host:1883``) or ``amqp_url`` (``amqp://user:pw@host:5672/``)
    probes may also report through that broker; ``guards`` relax the safe defaults;
    ``qoa4ml_options`` say how QoA4ML clients register (their reports come through
    ``amqp_url``); contracts are checked as their windows close, and every
    ``contract_check_s`` those of apps that sent nothing meanwhile (0: no periodic check);
    ``carbon`` gives each node's grid intensity (by its label, its region, else a
    default); ``artifacts`` keeps the bytes of the registry's models and datasets (default:
    ``artifacts/`` in ``data_dir``), each up to ``max_artifact_bytes``; ``harmonica_options``
    say how Harmonica's routes behave (its tool folder: off by default); ``replica`` makes
    this server one replica among several on a PostgreSQL ``store``, each live loop owned by
    one of them through a lease (`harmonia.server.leases`; ignored on SQLite)."""
    server = Server(store, admin_token, clock, guards, carbon, replica)
    runs = Runs(data_dir / "runs", data_dir)
    compat = qoa4ml.QoA4MLCompat(server, amqp_url, qoa4ml_options or qoa4ml.QoA4MLOptions())
    harmonica_compat = harmonica.HarmonicaCompat(server, harmonica_options)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # A thread holding the GIL keeps it for up to the switch interval (5 ms) while
        # another waits: a small violating batch on the event loop would wait that long
        # behind a big batch in the pool. 1 ms keeps that wait short, at little cost.
        interval = sys.getswitchinterval()
        sys.setswitchinterval(min(interval, SWITCH_INTERVAL_S))
        await server.outbox.start()
        await harmonica_compat.start()
        if server.replicas is not None:  # the loops it owns, their pushes resumed
            await run_in_threadpool(server.replicas.start)
        await run_in_threadpool(server.resume_pushes)
        bridges = bridges_for(server, mqtt_url, amqp_url)
        if amqp_url:
            compat.bridge = qoa4ml.QoA4MLBridge(server, amqp_url)
            bridges.append(compat.bridge)
        for bridge in bridges:
            await run_in_threadpool(bridge.start)
        await run_in_threadpool(_freeze_what_lives_long)
        server.observers.start()
        checker = (
            asyncio.create_task(_check_contracts(server, contract_check_s))
            if contract_check_s > 0
            else None
        )
        yield
        if checker is not None:
            checker.cancel()
        if server.replicas is not None:  # the leases let go: others take the loops at once
            await run_in_threadpool(server.replicas.stop)
        await run_in_threadpool(server.observers.stop)
        await harmonica_compat.close()
        await run_in_threadpool(server.contracts.queue.stop)
        for bridge in bridges:
            await run_in_threadpool(bridge.stop)
        compat.bridge = None
        sys.setswitchinterval(interval)
        await server.outbox.close()
        await run_in_threadpool(runs.close)
        server.ingestion.validator.close()

    api = FastAPI(
        title="Harmonia", version="0.1.0", default_response_class=JSONBody, lifespan=lifespan
    )
    api.state.server = server
    catalog = Catalog(
        store,
        artifacts or LocalArtifactStore(data_dir / "artifacts"),
        max_bytes=max_artifact_bytes,
        clock=clock,
    )
    api.state.catalog = CatalogService(catalog, server.domains)
    api.state.runs = runs
    api.state.harmonica = harmonica_compat
    api.state.qoa4ml = compat
    add_components(api, components_of(BATCH, "BatchIn"))
    add_components(api, components_of(TypeAdapter(Contract), "Contract"))
    add_components(api, components_of(TypeAdapter(ObserversConfig), "ObserversConfig"))

    api.add_middleware(
        BodyLimit,
        limit=MAX_BODY_BYTES,
        document_limit=MAX_DOCUMENT_BYTES,
        uploads=UPLOAD_PATHS,
        # the artifact, its form's fields and the multipart framing
        upload_limit=max_artifact_bytes + MAX_FIELD_BYTES + 64 * 1024,
    )
    if server.guards.cors_origins:
        api.add_middleware(
            CORSMiddleware,
            allow_origins=list(server.guards.cors_origins),
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
        )
    # outermost: a preflight from an origin not allowed is told which setting allows it
    api.add_middleware(HarmonicaPreflight, allowed=server.guards.cors_origins)
    api.add_exception_handler(RequestValidationError, _invalid)
    for kind in DOMAIN_ERRORS:
        api.add_exception_handler(kind, _domain_error)
    api.add_exception_handler(OperationalError, _database_down)

    for router in (harmonica.router, qoa4ml.router, *ROUTERS, hxmlops.router):
        api.include_router(router)
    return api


async def _check_contracts(server: Server, every: float) -> None:
    """The fallback to the checks ingestion runs as windows close: each ``every`` seconds,
    check the contract of every application that sent nothing since its last check (a time
    window closes without samples too), in the thread pool; an error is logged and the
    checks go on."""
    while True:
        await asyncio.sleep(every)
        try:
            apps = await run_in_threadpool(server.store.apps)
            for app in apps:
                await run_in_threadpool(server.contracts.fallback, app, every)
        except Exception:
            logger.exception("checking the contracts failed; next check in %s s", every)


async def _invalid(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    detail = _not_json(request, error) or field_errors(error)
    return JSONResponse({"detail": detail}, status_code=422)


def _not_json(request: Request, error: RequestValidationError) -> list[dict[str, str]] | None:
    """The one issue of a body refused as a whole because it did not come as JSON (``curl
    -d`` sends ``application/x-www-form-urlencoded``): FastAPI then validates the raw bytes,
    and "Input should be a valid dictionary" would not say what to fix. None otherwise."""
    if not any(tuple(item["loc"]) == ("body",) for item in error.errors()):
        return None
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";")[0].strip().lower()
    if media == "application/json" or media.endswith("+json"):
        return None
    got = f"it came as {media}" if media else "it came without one"
    reason = f"the body must be JSON: send Content-Type: application/json ({got})"
    return [{"field": "", "reason": reason}]


async def _domain_error(_: Request, error: Exception) -> JSONResponse:
    status, detail = status_of(error)
    # over the size limit: the client may still be sending; this connection ends here
    headers = {"Connection": "close"} if status == 413 else None
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


async def _database_down(_: Request, error: Exception) -> JSONResponse:
    logger.error("the database failed: %s", error)
    return JSONResponse({"detail": "the database is unavailable; retry"}, status_code=503)
