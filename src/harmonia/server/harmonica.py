"""Harmonica's API, so that a Harmonica managed system runs against Harmonia unchanged.

``POST /api/policy``, ``POST /api/telemetry`` and ``GET /api/knowledge/<policy_id>`` answer as
Harmonica's ACP server does, and a violated boundary POSTs ``{tactic_id, trigger_value,
trigger_timestamp}`` to the top-priority tactic's ``tactic_endpoint``. What differs is kept on
purpose: policies are validated (Harmonica accepted anything with a ``policy_id``), the
boundary is evaluated by Harmonia's condition grammar, and the knowledge lives in the
database. Harmonica's systems send no token, so these routes accept token-less requests from
loopback only; from elsewhere they need the admin token.
"""

import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from harmonia.core.errors import PolicyError
from harmonia.core.harmonica import convert_harmonica
from harmonia.core.policy import Policy
from harmonia.store import HarmonicaStore, Store

LOOPBACK = {"127.0.0.1", "::1"}
UNASSIGNED = "unassigned"


def _error(message: Any, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class HarmonicaCompat:
    """The compatibility routes' state: the store and a client for tactic POSTs."""

    def __init__(self, store: Store, admin_token: str, clock: Callable[[], float] = time.time):
        self.kb = HarmonicaStore(store)
        self.admin_token = admin_token
        self.clock = clock
        self.client = httpx.Client(timeout=5.0)
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
        host = request.client.host if request.client else ""
        if host in LOOPBACK:
            return True
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        return bool(token) and secrets.compare_digest(token, self.admin_token)

    def add_policy(self, document: Any) -> JSONResponse:
        if not isinstance(document, dict) or "policy_id" not in document:
            return _error("Invalid policy format", 400)
        try:
            converted = convert_harmonica(document)
        except PolicyError as error:
            return _error([{"field": i.path, "reason": i.reason} for i in error.issues], 400)
        policy_id = str(document["policy_id"])
        self.kb.put_policy(policy_id, document)
        policies = self.policies()
        with self._lock:
            policies.pop(policy_id, None)  # a replaced policy moves to the end, as in the DB
            policies[policy_id] = (document, converted)
        return JSONResponse({"message": f"Policy '{policy_id}' added successfully"}, 201)

    def telemetry(self, message: Any) -> JSONResponse:
        if not isinstance(message, dict):
            return _error("Telemetry must be a JSON object", 400)
        matched = False
        for policy_id, (document, policy) in list(self.policies().items()):
            attribute = document.get("quality_attribute")
            if attribute not in message:
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
        known = self.policies().get(policy_id)
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
        """Harmonica's analyse → plan → execute for one reported value."""
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
        payload = {
            "tactic_id": tactic["tactic_id"],
            "trigger_value": value,
            "trigger_timestamp": record["timestamp"],
        }
        try:
            reply = self.client.post(str(tactic.get("tactic_endpoint", "")), json=payload)
            record["status"] = (
                "CONFIRMED_SUCCESS" if reply.status_code == 200 else "CONFIRMED_FAILED"
            )
        except httpx.HTTPError:
            record["status"] = "REQUEST_FAILED"
        self.kb.update_record(record_id, record)


def add_harmonica_routes(api: FastAPI, store: Store, admin_token: str) -> HarmonicaCompat:
    """Mount Harmonica's three routes on ``api``."""
    compat = HarmonicaCompat(store, admin_token)

    async def body(request: Request) -> Any:
        try:
            return await request.json()
        except ValueError:
            return None

    @api.post("/api/policy", include_in_schema=True, tags=["harmonica"])
    async def harmonica_policy(request: Request) -> JSONResponse:
        if not compat.allowed(request):
            return _error("Harmonica's routes need the admin token from outside loopback", 401)
        return await run_in_threadpool(compat.add_policy, await body(request))

    @api.post("/api/telemetry", tags=["harmonica"])
    async def harmonica_telemetry(request: Request) -> JSONResponse:
        if not compat.allowed(request):
            return _error("Harmonica's routes need the admin token from outside loopback", 401)
        return await run_in_threadpool(compat.telemetry, await body(request))

    @api.get("/api/knowledge/{policy_id}", tags=["harmonica"])
    async def harmonica_knowledge(policy_id: str, request: Request) -> JSONResponse:
        if not compat.allowed(request):
            return _error("Harmonica's routes need the admin token from outside loopback", 401)
        return await run_in_threadpool(compat.knowledge, policy_id)

    return compat
