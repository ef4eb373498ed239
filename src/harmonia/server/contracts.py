"""Contracts held against live telemetry: stored version by version, checked over their
windows of stored telemetry, every violation recorded with its explanation, and a violated
SLO's remedy (``alert``, ``degrade``, ``reroute``, ``reject``) turned into an action aimed at
the service the explanation points to — delivered, tracked and shown like an adaptation.

A violation is recorded, and its remedy decided, when an SLO *becomes* violated (met, at
risk or without data before): a window that stays violated is one episode, not one action
per check. The state of each SLO lives in memory and starts from "met" after a restart, so
an SLO still violated then is recorded again once.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Literal

import orjson

from harmonia.core.actions import ActionKind
from harmonia.core.contracts import Contract, ContractError, SLOResult, evaluate, parse_contract
from harmonia.core.errors import Issue, PolicyError
from harmonia.policies import load_document
from harmonia.server.observe import finite_or_none
from harmonia.store import App, StoredContract

if TYPE_CHECKING:
    from harmonia.server.service import Server

ContractFormat = Literal["harmonia", "rohe", "qoa4ml"]
#: the most samples one check reads (the latest of the contract's longest window)
MAX_CHECK_SAMPLES = 200_000
#: which remedy a violated SLO's ``then`` asks for
REMEDIES = {
    "alert": ActionKind.ALERT,
    "degrade": ActionKind.DEGRADE,
    "reroute": ActionKind.REROUTE,
    "reject": ActionKind.REJECT,
}


def read_contract(text: str, app: App, form: ContractFormat | None = None) -> Contract:
    """A contract from YAML or JSON text in Harmonia's format, ROHE's ``ServiceContract``
    or QoA4ML's ``MLContract`` (``form``; by default told apart by their keys). A
    `PolicyError` lists every bad field, as for policies."""
    from harmonia.compat.qoa4ml.contract import from_qoa4ml_contract
    from harmonia.compat.rohe.contract import from_rohe_contract

    document = load_document(text)
    if not isinstance(document, dict):
        raise PolicyError([Issue("", "a contract is a mapping")])
    if form is None:
        form = (
            "rohe"
            if "contract" in document or "contract_id" in document
            else "qoa4ml"
            if "stakeholders" in document or "quality" in document
            else "harmonia"
        )
    try:
        if form == "rohe":
            contract = from_rohe_contract(document)
        elif form == "qoa4ml":
            contract = from_qoa4ml_contract(document, application=app.name)
        else:
            contract = parse_contract(document)
    except ContractError as error:
        raise PolicyError(list(error.issues)) from None
    issues = contract.issues_with(app.structure)
    if issues:
        raise PolicyError(issues)
    return contract


class ContractKeeper:
    """The server's contracts: parsed once per version, checked on demand or by the
    server's checker, their SLOs' last results kept for the status view."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self._lock = threading.Lock()
        #: app -> (version, contract), or None for an app known to have none (the periodic
        #: check asks for every app's every 10 s)
        self._parsed: dict[str, tuple[int, Contract] | None] = {}
        #: app -> {slo: its last result}
        self._last: dict[str, dict[str, SLOResult]] = {}

    def apply(self, app: App, text: str, form: ContractFormat | None = None) -> StoredContract:
        """Validate a contract for ``app``, store it as a new version and put it in force."""
        contract = read_contract(text, app, form)
        stored = self.server.store.add_contract(app, contract.model_dump(mode="json"))
        with self._lock:
            self._parsed[app.name] = (stored.version, contract)
            self._last.pop(app.name, None)
        return stored

    def contract(self, app: App) -> tuple[int, Contract] | None:
        """The contract in force and its version."""
        with self._lock:
            if app.name in self._parsed:
                return self._parsed[app.name]
        stored = self.server.store.contract(app)
        parsed = None if stored is None else (stored.version, parse_contract(stored.document))
        with self._lock:  # a contract applied meanwhile wins over what was read before it
            return self._parsed.setdefault(app.name, parsed)

    def check(self, app: App) -> list[SLOResult]:
        """Evaluate the contract over the latest telemetry; record each SLO that became
        violated (with the action its remedy asks for). Runs in a worker thread."""
        found = self.contract(app)
        if found is None:
            return []
        version, contract = found
        server = self.server
        now = server.clock()
        span = max(
            slo.window.seconds if slo.window is not None and slo.window.seconds else 0.0
            for slo in contract.slos
        )
        span = max(span, contract.window.seconds or 0.0, 60.0)
        rows = list(server.store.telemetry(app, now - span, None, latest=MAX_CHECK_SAMPLES))
        rows.reverse()  # oldest first, as a window reads them
        nodes = {i.name: i.node for i in server.store.instances(app) if i.node}
        signals = server.observers.runner.signals(app.name) if server.observers.watches(app) else {}
        results = evaluate(contract, app.structure, rows, nodes=nodes, signals=signals)
        with self._lock:
            before = self._last.get(app.name, {})
            self._last[app.name] = {r.slo: r for r in results}
        fresh = [
            r
            for r in results
            if r.status == "violated"
            and (before.get(r.slo) is None or before[r.slo].status != "violated")
        ]
        if fresh:
            self._record(app, version, contract, fresh, now)
        return results

    def last(self, app: App) -> list[SLOResult]:
        """The SLOs' results of the latest check (none before the first)."""
        with self._lock:
            return list(self._last.get(app.name, {}).values())

    def _record(
        self, app: App, version: int, contract: Contract, results: list[SLOResult], now: float
    ) -> None:
        server = self.server
        actions = [self._remedy(app, contract, r, now) for r in results]
        wanted = [a for a in actions if a is not None]
        stored = server.store.add_actions(app, wanted) if wanted else []
        by_result = iter(stored)
        rows = []
        for result, action in zip(results, actions, strict=True):
            action_id = next(by_result).id if action is not None else None
            view = result.as_dict()
            rows.append(
                {
                    "ts": now,
                    "contract_version": version,
                    "slo": result.slo,
                    "scope": result.scope,
                    "target": result.target,
                    "condition": result.condition[:1000],
                    "severity": result.severity,
                    "window": result.window[:64],
                    "samples": result.samples,
                    "checks": view["checks"],
                    "explanation": (result.explanation or "")[:2000],
                    "attribution": view["attribution"],
                    "action_id": action_id,
                }
            )
        ids = server.store.add_violations(app, rows)
        for violation_id, row in zip(ids, rows, strict=True):
            server.events.publish(app.name, "violation", {"id": violation_id, **row})
        if stored:
            server.counters.decided(app.name, (a.kind for a in stored))
            for taken in stored:
                server.events.publish(app.name, "action", taken.__dict__)
            alerts = [a for a in stored if a.kind == ActionKind.ALERT]
            if alerts and contract.alert_url:
                server.pusher.submit(app, alerts, url=contract.alert_url)
            pushed = [
                a
                for a in stored
                if a.kind != ActionKind.ALERT and app.effector_url_of(a.service) is not None
            ]
            if pushed:
                server.pusher.submit(app, pushed)

    def _remedy(
        self, app: App, contract: Contract, result: SLOResult, now: float
    ) -> dict[str, Any] | None:
        """The action a violated SLO's ``then`` asks for, aimed where its explanation points:
        the most to blame service (and instance) of the attribution, else its target."""
        if result.then is None:
            return None
        kind = REMEDIES[result.then]
        blamed = next((a for a in result.attribution if a.service), None)
        service = (
            blamed.service
            if blamed is not None and blamed.service
            else result.target
            if result.scope == "service" and result.target
            else _first_service(app, result)
        )
        model = self._cheaper_model(app, service) if kind is ActionKind.DEGRADE else None
        context: dict[str, Any] = {"slo": result.slo, "severity": result.severity}
        if blamed is not None:
            context.update(stage=blamed.stage, away_from=blamed.instance, node=blamed.node)
        values = {
            f"{c.signal} ({c.op} {c.threshold:g})": v
            for c in result.checks
            if (v := finite_or_none(c.value)) is not None
        }
        return {
            "service": service,
            "instance": None,
            "kind": kind.value,
            "model": model,
            "version": None,
            "ts": now,
            "strategy": f"contract {contract.name or app.name}",
            "reason": (result.explanation or f"{result.slo} violated")[:2000],
            "trigger": f"{result.slo}: {result.condition}"[:500],
            "values": values,
            "context": {
                k: finite_or_none(v) if isinstance(v, float) else v for k, v in context.items()
            },
        }

    def _cheaper_model(self, app: App, service: str) -> str | None:
        """The model to degrade to: the one before the model in service in the service's
        list (models are declared cheapest first), or its first."""
        models = app.structure.service(service).models
        loop = self.server.loop(app, service)
        active = loop.knowledge.active_model if loop is not None else None
        if active in models and models.index(active) > 0:
            return models[models.index(active) - 1]
        return models[0]


def _first_service(app: App, result: SLOResult) -> str:
    """The service an SLO without a blamed service stands for: its stage's first service,
    or the last stage's (the pipeline's output) end to end."""
    structure = app.structure
    if result.scope == "stage" and result.target:
        stage = next(s for s in structure.stages if s.name == result.target)
        return stage.services[0].name
    return structure.stages[-1].services[0].name


def contract_view(version: int, contract: Contract) -> dict[str, Any]:
    return {"version": version, "document": orjson.loads(contract.model_dump_json())}
