"""Harmonica's knowledge base and its MAPE loop, behind Harmonica's routes: policies and
their telemetry and interventions in the database (`harmonia.store.HarmonicaStore`), the
primary boundary checked on each message, secondary boundaries every ``check_every_s``
(Harmonica: 30 s), tactics POSTed through the server's outbox, off the request path.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from starlette.concurrency import run_in_threadpool

from harmonia.compat.harmonica.analysis import (
    drifted,
    first_endpoint,
    top_tactic,
    violated,
)
from harmonia.compat.harmonica.policy import convert_harmonica
from harmonia.compat.harmonica.tool import HarmonicaOptions, HarmonicaTool
from harmonia.core.errors import PolicyError
from harmonia.core.numbers import is_number
from harmonia.server.effector_client import EffectorClient, EffectorUnreachable
from harmonia.server.targets import TargetRefused, check_target
from harmonia.store import HarmonicaStore

if TYPE_CHECKING:
    from harmonia.server.service import Server

logger = logging.getLogger("harmonia.harmonica")
UNASSIGNED = "unassigned"
POLICY_ID_RULE = "must be text or a number of 1-128 characters, without NUL"


class Refused(ValueError):
    """A request Harmonica's routes answer with 400 and these field errors."""

    def __init__(self, errors: str | list[dict[str, str]]) -> None:
        super().__init__(str(errors))
        self.errors = errors


def storable_id(policy_id: Any) -> bool:
    text = str(policy_id)
    return isinstance(policy_id, str | int) and 0 < len(text) <= 128 and "\x00" not in text


class HarmonicaCompat:
    """The compatibility routes' state: the knowledge base, the tactic deliveries, the
    periodic check of secondary boundaries and the tool folder."""

    def __init__(self, server: Server, options: HarmonicaOptions | None = None) -> None:
        self.server = server
        self.options = options or HarmonicaOptions()
        self.kb = HarmonicaStore(server.store)
        self.tool = HarmonicaTool(self.options)
        self.clock = server.clock
        self._policies: dict[str, dict[str, Any]] | None = None
        self._checked: dict[str, int] = {}
        self._lock = threading.Lock()
        self._checker: asyncio.Task[None] | None = None

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        """Start the periodic check of secondary boundaries (the server's lifespan)."""
        if self.options.check_every_s > 0:
            self._checker = asyncio.create_task(self._check_every(self.options.check_every_s))

    async def close(self) -> None:
        if self._checker is not None:
            self._checker.cancel()
            self._checker = None
        await run_in_threadpool(self.tool.stop)

    async def _check_every(self, period: float) -> None:
        while True:
            await asyncio.sleep(period)
            try:
                await run_in_threadpool(self.check_secondary)
            except Exception:
                logger.exception("checking secondary boundaries failed; next in %s s", period)

    # -- policies ---------------------------------------------------------------------------
    def policies(self) -> dict[str, dict[str, Any]]:
        """Every policy as posted, read from the database once and then kept."""
        with self._lock:
            if self._policies is None:
                self._policies = self.kb.policies()
            return self._policies

    def add_policy(self, document: Any) -> str:
        """Validate and store a policy; answers its id or raises `Refused`."""
        if not isinstance(document, dict) or "policy_id" not in document:
            raise Refused("Invalid policy format")
        if not storable_id(document["policy_id"]):
            raise Refused([{"field": "policy_id", "reason": POLICY_ID_RULE}])
        try:
            convert_harmonica(document)
        except PolicyError as error:
            raise Refused([{"field": i.path, "reason": i.reason} for i in error.issues]) from None
        refused = self._refused_endpoints(document)
        if refused:
            raise Refused(refused)
        policy_id = str(document["policy_id"])
        self.kb.put_policy(policy_id, document)
        policies = self.policies()
        with self._lock:
            policies.pop(policy_id, None)  # a replaced policy moves to the end, as in the DB
            policies[policy_id] = document
        return policy_id

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

    def reset(self) -> None:
        """Forget every policy, message and intervention, as Harmonica's reset does."""
        self.kb.reset()
        with self._lock:
            self._policies = {}
            self._checked.clear()

    # -- telemetry and analysis -------------------------------------------------------------
    def telemetry(self, message: Any) -> None:
        """Record ``message`` under every policy whose quality attribute it carries (else as
        unassigned) and check each policy's primary boundary."""
        if not isinstance(message, dict):
            raise Refused("Telemetry must be a JSON object")
        matched = False
        for policy_id, document in list(self.policies().items()):
            attribute = document.get("quality_attribute")
            if not isinstance(attribute, str) or attribute not in message:
                continue
            matched = True
            self.kb.record(policy_id, "telemetry", message)
            value = message[attribute]
            history = self._history(policy_id, document, attribute)
            if violated(document, value, history):
                self._fire(policy_id, top_tactic(document), None, value, attribute)
        if not matched:
            self.kb.record(UNASSIGNED, "telemetry", message)

    def _history(self, policy_id: str, document: dict[str, Any], attribute: str) -> list[float]:
        """The attribute's recorded values, read only for a dynamic boundary."""
        if not (document.get("adaptation_boundary") or {}).get("dynamic_logic"):
            return []
        records = self.kb.records(policy_id, "telemetry")
        return [r[attribute] for r in records if is_number(r.get(attribute))]

    def check_secondary(self) -> int:
        """Harmonica's periodic checker: each policy's secondary boundaries against its
        latest message; a crossed one sends its tactic to the first tactic's endpoint.
        A message already checked is not checked again (Harmonica would re-send the tactic
        every period while the system is silent). Answers the number of tactics sent."""
        sent = 0
        for policy_id, document in list(self.policies().items()):
            if not document.get("secondary_boundaries"):
                continue
            latest = self.kb.latest(policy_id)
            if latest is None or self._checked.get(policy_id) == latest[0]:
                continue
            self._checked[policy_id] = latest[0]
            endpoint = first_endpoint(document)
            for drift in drifted(document, latest[1]):
                tactic = {"tactic_id": drift.tactic_id, "tactic_endpoint": endpoint}
                sent += self._fire(policy_id, tactic, endpoint, drift.value, drift.attribute)
        return sent

    def _fire(
        self,
        policy_id: str,
        tactic: dict[str, Any] | None,
        endpoint: str | None,
        value: Any,
        metric: str,
    ) -> int:
        """Record the intervention and queue its POST; nothing without a tactic."""
        if tactic is None:
            return 0
        record = {
            "timestamp": self.clock(),
            "policy_id": policy_id,
            "tactic_id": tactic.get("tactic_id", ""),
            "trigger_value": value,
            "trigger_metric": metric,
            "status": "TRIGGERED",
        }
        record_id = self.kb.record(policy_id, "intervention", record)
        url = str(endpoint or tactic.get("tactic_endpoint") or "")
        self.server.outbox.submit(
            f"harmonica:{policy_id}", [TacticCall(self, record_id, record, url)]
        )
        return 1

    def settle(self, record_id: int, record: dict[str, Any], status: str) -> None:
        self.kb.update_record(record_id, {**record, "status": status})

    # -- the dashboard's view ---------------------------------------------------------------
    def knowledge(self, policy_id: str) -> dict[str, Any]:
        """What Harmonica answers for ``policy_id``: an unknown one is no error, just empty."""
        if policy_id == UNASSIGNED:
            return {
                "policy": {"policy_id": UNASSIGNED},
                "telemetry_history": self.kb.records(UNASSIGNED, "telemetry"),
                "intervention_logs": [],
            }
        if not storable_id(policy_id):
            return {"policy": None, "telemetry_history": [], "intervention_logs": []}
        document = self.policies().get(policy_id)
        default_metric = (document or {}).get("quality_attribute", "unknown")
        logs = [
            {**record, "trigger_metric": record.get("trigger_metric") or default_metric}
            for record in self.kb.records(policy_id, "intervention")
        ]
        return {
            "policy": document,
            "telemetry_history": self.kb.records(policy_id, "telemetry"),
            "intervention_logs": logs,
        }


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
