"""QoA4ML's and ROHE's HTTP face, so that a QoA4ML client registers with Harmonia unchanged.

``POST /registration`` answers as ROHE's observation service does: ``{"status": "success",
"response": {<app>: "...", "app_id": ..., "connector": {AMQP connector config}}}``; the
client then publishes its reports to ``<app>_exchange`` (a topic exchange) under
``<app>.<user>[.<stage>][.<instance>].client<n>``, which the QoA4ML bridge
(`harmonia.compat.qoa4ml.bridge`) consumes. ``DELETE /registration`` forgets a registration
(the application and its telemetry stay). ``POST /api/v1/apps/{app}/qoa4ml/reports`` takes
the same reports over HTTP (one, or a list), with the application's token.

Registering needs the operator's registration key (``HARMONIA_REGISTRATION_KEY``) or the
admin token, as ``Authorization: Bearer <key>`` or — what QoA4ML's client can send, since it
sends no headers of its own — in the registration URL, ``/registration?key=<key>``; unless
the operator opened registration (``HARMONIA_OPEN_REGISTRATION``). An application missing
is registered on its first registration (``HARMONIA_QOA4ML_CREATE_APPS``, on by default) as a
one-stage pipeline: stage ``stage_id`` (``main`` if none), one service and model named after
the client's ``functionality`` (``default`` if none). A pipeline of several stages is
registered first (``POST /api/v1/apps``); its clients then register with one of its stages.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

import orjson
from fastapi import APIRouter, Depends, Header, Query, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from harmonia.compat.qoa4ml.bridge import QoA4MLBridge, chunks, exchange_of
from harmonia.compat.qoa4ml.reports import ReportInvalid, map_report
from harmonia.core.application import DEFAULT_SERVICE, DEFAULT_STAGE
from harmonia.server.api.deps import bearer_token, get_server
from harmonia.server.errors import Forbidden, Invalid, Unauthorized, Unavailable
from harmonia.server.openapi import errors
from harmonia.server.schemas import AppIn, field_errors
from harmonia.server.service import Server
from harmonia.store import App, Conflict, NotFound, same_secret

if TYPE_CHECKING:
    from harmonia.settings import Settings

MAX_REPORTS = 1000


@dataclass(frozen=True)
class QoA4MLOptions:
    """How the server answers QoA4ML clients (from `harmonia.settings.Settings`)."""

    #: the key a client registers with; empty: only the admin token (or open registration)
    registration_key: str = ""
    #: anyone may register (a lab broker, a demo)
    open_registration: bool = False
    #: register a missing application on its first registration
    create_apps: bool = True
    #: the broker address handed to clients; empty: the host of the server's AMQP URL
    endpoint: str = ""

    @classmethod
    def from_settings(cls, settings: Settings) -> QoA4MLOptions:
        return cls(
            registration_key=settings.registration_key,
            open_registration=settings.open_registration,
            create_apps=settings.qoa4ml_create_apps,
            endpoint=settings.qoa4ml_endpoint,
        )


class RegistrationIn(BaseModel):
    """What a QoA4ML client sends (its ``ClientInfo``); fields Harmonia does not use are
    ignored."""

    model_config = ConfigDict(extra="ignore")
    application_name: str = Field(min_length=1, max_length=64)
    run_id: str = Field(default="", max_length=128)
    user_id: str = Field(default="", max_length=128)
    stage_id: str | None = Field(default=None, max_length=128)
    instance_id: str | None = Field(default=None, max_length=128)
    functionality: str | None = Field(default=None, max_length=128)


@dataclass
class QoA4MLCompat:
    """The registrations (in memory: the routing key and reports carry what the bridge needs,
    so nothing is lost with them but the client counts) and the bridge."""

    server: Server
    amqp_url: str
    options: QoA4MLOptions
    bridge: QoA4MLBridge | None = None
    #: app -> (run, user, stage, instance) registered
    registrations: dict[str, set[tuple[str, str, str, str]]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def check_key(self, token: str | None) -> None:
        if self.options.open_registration:
            return
        if not token:
            raise Unauthorized(
                "missing registration key: send Authorization: Bearer <key> or register at "
                "/registration?key=<key>"
            )
        keys = [self.server.admin_token, self.options.registration_key]
        if not any(k and same_secret(token, k) for k in keys):
            raise Forbidden("this registration key is not valid")

    def connector(self, body: RegistrationIn, count: int) -> dict[str, Any]:
        routing = [body.application_name, body.user_id]
        routing += [part for part in (body.stage_id, body.instance_id) if part is not None]
        return {
            "name": "amqp_connector",
            "connector_class": "AMQP",
            "config": {
                "end_point": self.options.endpoint or advertised_endpoint(self.amqp_url),
                "exchange_name": exchange_of(body.application_name),
                "exchange_type": "topic",
                "out_routing_key": ".".join(routing) + f".client{count}",
                "health_check_disable": False,
            },
        }

    def register(self, body: RegistrationIn) -> dict[str, Any]:
        if self.bridge is None:
            raise Unavailable(
                "QoA4ML clients report over AMQP: start the server with HARMONIA_AMQP_URL"
            )
        name = body.application_name
        try:
            app = self.server.app(name)
            created = False
        except NotFound:
            app, created = self._create(body), True
        _stage_of(app, body.stage_id)
        self.bridge.bind(name)  # before the reply: the client publishes right after it
        with self._lock:
            key = (body.run_id, body.user_id, body.stage_id or "", body.instance_id or "")
            self.registrations.setdefault(name, set()).add(key)
            count = self.counts[name] = self.counts.get(name, 0) + 1
        said = (
            f"Application {name} created for user {body.user_id} with run ID: {body.run_id}"
            if created
            else "Application already exist"
        )
        return {
            "status": "success",
            "response": {
                name: said,
                "app_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"harmonia:{name}:{app.id}")),
                "connector": self.connector(body, count),
            },
        }

    def _create(self, body: RegistrationIn) -> App:
        if not self.options.create_apps:
            raise NotFound(
                f"no application named {body.application_name!r}: register it first "
                "(POST /api/v1/apps), or let registrations create it (HARMONIA_QOA4ML_CREATE_APPS)"
            )
        stage = body.stage_id or DEFAULT_STAGE
        service = body.functionality or DEFAULT_SERVICE
        try:
            spec = AppIn.model_validate(
                {
                    "name": body.application_name,
                    "owner": body.user_id or "qoa4ml",
                    "stages": [
                        {"name": stage, "services": [{"name": service, "models": [service]}]}
                    ],
                }
            )
        except ValidationError as error:
            raise Invalid(field_errors(error)) from None
        with contextlib.suppress(Conflict):  # registered meanwhile by another client
            self.server.register(spec)
        return self.server.app(body.application_name)

    def unregister(self, body: RegistrationIn) -> dict[str, Any]:
        with self._lock:
            kept = self.registrations.get(body.application_name, set())
            for key in [k for k in kept if k[:2] == (body.run_id, body.user_id)]:
                kept.discard(key)
        return {"status": "success", "response": {"result": f"Deleted {body.application_name}"}}

    def reports(self, app: App, reports: list[Any]) -> dict[str, Any]:
        """Reports over HTTP: all mapped first (a bad one refuses the request, 422), then
        stored by instance."""
        by_instance: dict[str, list[list[dict[str, Any]]]] = {}
        issues = []
        for i, report in enumerate(reports):
            try:
                mapped = map_report(app.structure, report, self.server.clock())
            except ReportInvalid as error:
                issues.append({"field": f"reports[{i}]", "reason": str(error)})
                continue
            for instance, samples in mapped.batches.items():
                by_instance.setdefault(instance, []).append(samples)
        if issues:
            raise Invalid(issues[:20])
        accepted = 0
        for instance, mapped_reports in by_instance.items():
            for chunk in chunks(mapped_reports):
                samples = [s for report in chunk for s in report]
                result = self.server.ingest(app, {"instance": instance, "samples": samples})
                accepted += int(result["accepted"])
        return {"accepted": accepted, "reports": len(reports)}


def _stage_of(app: App, stage: str | None) -> None:
    names = [s.name for s in app.structure.stages]
    if stage is not None and stage not in names and len(names) > 1:
        reason = f"{app.name} has no stage {stage!r}; its stages: {', '.join(names)}"
        raise Invalid([{"field": "stage_id", "reason": reason}])


def advertised_endpoint(amqp_url: str) -> str:
    """What QoA4ML's connector can connect to: an ``amqps://`` URL as it is, else the host
    alone (its connector passes anything else to pika as a host name, on port 5672 with
    pika's default credentials)."""
    parts = urlsplit(amqp_url)
    if parts.scheme == "amqps":
        return amqp_url
    return parts.hostname or "localhost"


def _compat(request: Request) -> QoA4MLCompat:
    compat: QoA4MLCompat = request.app.state.qoa4ml
    return compat


async def _body(request: Request) -> Any:
    try:
        return orjson.loads(await request.body())
    except orjson.JSONDecodeError as error:
        raise Invalid([{"field": "body", "reason": f"is not JSON: {error}"}]) from None


router = APIRouter(tags=["qoa4ml"])


@router.post(
    "/registration", include_in_schema=True, responses=errors(401, 403, 404, 413, 422, 503)
)
@router.post("/registration/", include_in_schema=False)
async def register(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
    key: Annotated[str | None, Query(max_length=256)] = None,
) -> Any:
    """Register a QoA4ML client as ROHE's observation service does; the reply carries the
    AMQP connector it reports through."""
    compat = _compat(request)
    compat.check_key(bearer_token(authorization) or key)
    body = _registration(await _body(request))
    return await run_in_threadpool(compat.register, body)


@router.delete(
    "/registration", include_in_schema=True, responses=errors(401, 403, 404, 413, 422, 503)
)
@router.delete("/registration/", include_in_schema=False)
async def unregister(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
    key: Annotated[str | None, Query(max_length=256)] = None,
) -> Any:
    """Forget a registration (the application and its telemetry stay)."""
    compat = _compat(request)
    compat.check_key(bearer_token(authorization) or key)
    return compat.unregister(_registration(await _body(request)))


@router.post("/api/v1/apps/{name}/qoa4ml/reports", responses=errors(401, 403, 404, 413, 422, 503))
async def reports(
    name: str,
    request: Request,
    server: Annotated[Server, Depends(get_server)],
    authorization: Annotated[str | None, Header()] = None,
) -> Any:
    """QoA4ML reports (one object, or a list of them) over HTTP, with the app's token."""
    app = server.authorize(name, bearer_token(authorization))
    body = await _body(request)
    listed = body if isinstance(body, list) else [body]
    if len(listed) > MAX_REPORTS:
        raise Invalid([{"field": "body", "reason": f"at most {MAX_REPORTS} reports a request"}])
    return await run_in_threadpool(_compat(request).reports, app, listed)


def _registration(body: Any) -> RegistrationIn:
    try:
        return RegistrationIn.model_validate(body)
    except ValidationError as error:
        raise Invalid(field_errors(error)) from None


__all__ = ["QoA4MLBridge", "QoA4MLCompat", "QoA4MLOptions", "router"]
