"""Harmonica's API, so that a Harmonica managed system runs against Harmonia unchanged.

``POST /api/policy``, ``POST /api/telemetry`` and ``GET /api/knowledge/<policy_id>`` answer as
Harmonica's ACP server does, and a violated boundary POSTs ``{tactic_id, trigger_value,
trigger_timestamp}`` to the top-priority tactic's ``tactic_endpoint``. What differs is kept on
purpose: policies are validated (Harmonica accepted anything with a ``policy_id``), the
boundary is evaluated by Harmonia's condition grammar, and the knowledge lives in the
database. Harmonica's systems send no token, so these routes accept token-less requests from
a local Harmonica system only (see `HarmonicaCompat.allowed`); others need the admin token.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from harmonia.bounded import DocumentTooComplex, load_json
from harmonia.compat.harmonica.policy import convert_harmonica
from harmonia.core.errors import PolicyError
from harmonia.core.policy import Policy
from harmonia.server.effector_client import EffectorClient, EffectorUnreachable
from harmonia.server.schemas import (
    HARMONICA_POLICY_BODY,
    HARMONICA_TELEMETRY_BODY,
    HarmonicaKnowledgeOut,
    HarmonicaMessageOut,
    harmonica_errors,
)
from harmonia.server.targets import TargetRefused, check_target
from harmonia.store import HarmonicaStore, same_secret

if TYPE_CHECKING:
    from harmonia.server.service import Server

LOOPBACK = {"127.0.0.1", "::1"}
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}
UNASSIGNED = "unassigned"


def _error(message: Any, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


POLICY_ID_RULE = "must be text or a number of 1-128 characters, without NUL"


def _storable_id(policy_id: Any) -> bool:
    text = str(policy_id)
    return isinstance(policy_id, str | int) and 0 < len(text) <= 128 and "\x00" not in text


def _host_name(host: str) -> str:
    """``host`` of a Host header without its port (``[::1]:8000`` → ``[::1]``)."""
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class HarmonicaCompat:
    """The compatibility routes' state: the knowledge base and the tactic deliveries."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.kb = HarmonicaStore(server.store)
        self.clock = server.clock
        self._policies: dict[str, tuple[dict[str, Any], Policy]] | None = None
        self._lock = threading.Lock()

    def policies(self) -> dict[str, tuple[dict[str, Any], Policy]]:
        """Every policy as posted and as converted, read from the database once and then
        kept: converting on each telemetry message would validate the policy every time."""
        with self._lock:
            if self._policies is None:
                self._policies = {
                    policy_id: (document, convert_harmonica(document))
                    for policy_id, document in self.kb.policies().items()
                }
            return self._policies

    def allowed(self, request: Request) -> bool:
        """Harmonica's systems send no token. Token-less requests are taken only from a
        loopback client that asked for a loopback Host (a DNS-rebound name does not pass)
        and whose Origin, if any, the operator allowed (a web page open in a local browser
        does not pass). Anyone else needs the admin token."""
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        if token:
            return same_secret(token, self.server.admin_token)
        client = request.client.host if request.client else ""
        host = _host_name(request.headers.get("host", ""))
        origin = request.headers.get("origin")
        return (
            client in LOOPBACK
            and host in LOOPBACK_HOSTS
            and (origin is None or origin in self.server.guards.cors_origins)
        )

    def add_policy(self, document: Any) -> JSONResponse:
        if not isinstance(document, dict) or "policy_id" not in document:
            return _error("Invalid policy format", 400)
        if not _storable_id(document["policy_id"]):
            return _error([{"field": "policy_id", "reason": POLICY_ID_RULE}], 400)
        try:
            converted = convert_harmonica(document)
        except PolicyError as error:
            return _error([{"field": i.path, "reason": i.reason} for i in error.issues], 400)
        refused = self._refused_endpoints(document)
        if refused:
            return _error(refused, 400)
        policy_id = str(document["policy_id"])
        self.kb.put_policy(policy_id, document)
        policies = self.policies()
        with self._lock:
            policies.pop(policy_id, None)  # a replaced policy moves to the end, as in the DB
            policies[policy_id] = (document, converted)
        return JSONResponse({"message": f"Policy '{policy_id}' added successfully"}, 201)

    def _refused_endpoints(self, document: dict[str, Any]) -> list[dict[str, str]]:
        """Tactic endpoints the server will not call, each with the reason."""
        refused = []
        allow = self.server.guards.allow_link_local_targets
        for i, tactic in enumerate(document.get("tactics") or []):
            endpoint = tactic.get("tactic_endpoint") if isinstance(tactic, dict) else None
            if not endpoint:
                continue
            try:
                check_target(str(endpoint), allow_link_local=allow)
            except TargetRefused as error:
                refused.append({"field": f"tactics[{i}].tactic_endpoint", "reason": str(error)})
        return refused

    def telemetry(self, message: Any) -> JSONResponse:
        if not isinstance(message, dict):
            return _error("Telemetry must be a JSON object", 400)
        matched = False
        for policy_id, (document, policy) in list(self.policies().items()):
            attribute = document.get("quality_attribute")
            if not isinstance(attribute, str) or attribute not in message:
                continue
            matched = True
            self.kb.record(policy_id, "telemetry", message)
            value = message[attribute]
            if isinstance(value, int | float) and not isinstance(value, bool):
                self._analyse(policy_id, document, policy, float(value))
        if not matched:
            self.kb.record(UNASSIGNED, "telemetry", message)
        return JSONResponse({"message": "Telemetry received"})

    def knowledge(self, policy_id: str) -> JSONResponse:
        if policy_id == UNASSIGNED:
            return JSONResponse(
                {
                    "policy": {"policy_id": UNASSIGNED, "quality_attribute": "score"},
                    "telemetry_history": self.kb.records(UNASSIGNED, "telemetry"),
                    "intervention_history": [],
                }
            )
        known = self.policies().get(policy_id) if _storable_id(policy_id) else None
        if known is None:
            return _error("Policy not found", 404)
        document = known[0]
        return JSONResponse(
            {
                "policy": document,
                "telemetry_history": self.kb.records(policy_id, "telemetry"),
                "intervention_history": self.kb.records(policy_id, "intervention"),
            }
        )

    def _analyse(
        self, policy_id: str, document: dict[str, Any], policy: Policy, value: float
    ) -> None:
        """Harmonica's analyse → plan → execute for one reported value; the tactic's POST
        leaves through the server's outbox, off the request path."""
        primary = policy.boundaries[0] if policy.boundaries else None
        attribute = document["quality_attribute"]
        if primary is None or not primary.when.evaluate({f"mean({attribute})": value}).fired:
            return
        tactics = sorted(document.get("tactics", []), key=lambda t: t.get("priority", 0))
        if not tactics:
            return
        tactic = tactics[0]
        record = {
            "timestamp": self.clock(),
            "policy_id": policy_id,
            "tactic_id": tactic["tactic_id"],
            "trigger_value": value,
            "status": "TRIGGERED",
        }
        record_id = self.kb.record(policy_id, "intervention", record)
        job = TacticCall(self, record_id, record, str(tactic.get("tactic_endpoint", "")))
        self.server.outbox.submit(f"harmonica:{policy_id}", [job])

    def settle(self, record_id: int, record: dict[str, Any], status: str) -> None:
        self.kb.update_record(record_id, {**record, "status": status})


@dataclass(frozen=True)
class TacticCall:
    """POST ``{tactic_id, trigger_value, trigger_timestamp}`` to a tactic's endpoint, once
    (as Harmonica does), and record how it went."""

    compat: HarmonicaCompat
    record_id: int
    record: dict[str, Any]
    endpoint: str

    async def run(self, client: EffectorClient) -> None:
        payload = {
            "tactic_id": self.record["tactic_id"],
            "trigger_value": self.record["trigger_value"],
            "trigger_timestamp": self.record["timestamp"],
        }
        try:
            status, _ = await client.post(self.endpoint, orjson.dumps(payload))
            outcome = "CONFIRMED_SUCCESS" if status == 200 else "CONFIRMED_FAILED"
        except (EffectorUnreachable, TargetRefused):
            outcome = "REQUEST_FAILED"
        await asyncio.to_thread(self.compat.settle, self.record_id, self.record, outcome)

    async def drop(self, reason: str) -> None:
        await asyncio.to_thread(self.compat.settle, self.record_id, self.record, "REQUEST_DROPPED")


REFUSED = "Harmonica's routes need the admin token, except from a local Harmonica system"

router = APIRouter(tags=["harmonica"])


async def compat_of(request: Request) -> HarmonicaCompat:
    """The app's `HarmonicaCompat` (made by `harmonia.server.app.create_app`)."""
    compat: HarmonicaCompat = request.app.state.harmonica
    return compat


Compat = Annotated[HarmonicaCompat, Depends(compat_of)]


async def _posted(
    request: Request, compat: HarmonicaCompat, handle: Callable[[Any], JSONResponse]
) -> JSONResponse:
    """``handle`` the JSON body (None if it is not JSON) off the event loop, for a caller
    Harmonica's routes accept; the server's body limit applies, and parsing is bounded."""
    if not compat.allowed(request):
        return _error(REFUSED, 401)
    try:
        document = await run_in_threadpool(load_json, await request.body())
    except DocumentTooComplex as error:
        return _error(str(error), 413)
    except ValueError:
        document = None
    return await run_in_threadpool(handle, document)


@router.post(
    "/api/policy",
    status_code=201,
    response_model=None,
    responses={
        201: {"model": HarmonicaMessageOut, "description": "Stored and in force"},
        **harmonica_errors(400, 401, 413),
    },
    openapi_extra=HARMONICA_POLICY_BODY,
)
async def harmonica_policy(request: Request, compat: Compat) -> JSONResponse:
    return await _posted(request, compat, compat.add_policy)


@router.post(
    "/api/telemetry",
    response_model=None,
    responses={
        200: {"model": HarmonicaMessageOut, "description": "Recorded and analysed"},
        **harmonica_errors(400, 401, 413),
    },
    openapi_extra=HARMONICA_TELEMETRY_BODY,
)
async def harmonica_telemetry(request: Request, compat: Compat) -> JSONResponse:
    return await _posted(request, compat, compat.telemetry)


@router.get(
    "/api/knowledge/{policy_id}",
    response_model=None,
    responses={
        200: {"model": HarmonicaKnowledgeOut, "description": "The policy and its history"},
        **harmonica_errors(401, 404, 422),
    },
)
async def harmonica_knowledge(policy_id: str, request: Request, compat: Compat) -> JSONResponse:
    if not compat.allowed(request):
        return _error(REFUSED, 401)
    return await run_in_threadpool(compat.knowledge, policy_id)
