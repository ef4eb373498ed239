"""Contracts held against live telemetry: stored version by version, checked over their
windows of stored telemetry, every violation recorded with its explanation, and a violated
SLO's remedy (``alert``, ``degrade``, ``reroute``, ``reject``) turned into an action aimed at
the service the explanation points to — delivered, tracked and shown like an adaptation.

Checks run as the contract's windows close, driven by ingestion (`ContractKeeper.ingested`):
a window of N samples after every N samples of its SLO's scope, a time window once that long
has passed since the app's last check (`harmonia.server.contract_schedule`). They run on one
worker thread (`CheckQueue`), never on the request path, with at most one check per app in
flight and one queued behind it. The server's periodic check (`ContractKeeper.fallback`)
covers apps that send nothing: a time window closes without samples too (``no_data``).
``POST .../contract/check`` checks at once.

A violation is recorded, and its remedy decided, when an SLO *becomes* violated (met, at
risk or without data before): a window that stays violated is one episode, not one action
per check. Where each SLO stands (status, since when, last checked, last result) is stored
per contract version and restored on first use, so a restart does not record an episode
again.

Among replicas (PostgreSQL, `harmonia.server.leases`) only the replica that holds the app's
contract lease checks its contract: the others count samples towards its windows as here,
ask the holder to check when one closes, skip the periodic check, and answer ``POST
.../contract/check`` with what the contract reads now, recording nothing (the holder records
it). An SLO that becomes violated is so recorded once, by one replica, whose SLO states are
read from the store when it takes the lease over. On SQLite (one server) nothing changes.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast

import orjson

from harmonia.core.actions import ActionKind
from harmonia.core.contracts import (
    Attribution,
    Check,
    Contract,
    ContractError,
    SLOResult,
    Status,
    evaluate,
    parse_contract,
)
from harmonia.core.errors import Issue, PolicyError
from harmonia.orchestration.tactics import Replan
from harmonia.policies import load_document
from harmonia.server.contract_schedule import CheckQueue, WindowSchedule
from harmonia.server.infrastructure import INFRASTRUCTURE_KINDS
from harmonia.server.observe import finite_or_none
from harmonia.store import App, StoredContract, StoredSLOState
from harmonia.store.leases import CONTRACT_LEASE, LeaseLost

if TYPE_CHECKING:
    from harmonia.server.service import Server

logger = logging.getLogger("harmonia.server.contracts")

ContractFormat = Literal["harmonia", "rohe", "qoa4ml"]
#: the most samples one check reads (the latest of the contract's longest window)
MAX_CHECK_SAMPLES = 200_000
#: which remedy a violated SLO's ``then`` asks for
REMEDIES = {
    "alert": ActionKind.ALERT,
    "degrade": ActionKind.DEGRADE,
    "reroute": ActionKind.REROUTE,
    "reject": ActionKind.REJECT,
    "scale": ActionKind.SCALE,
    "migrate": ActionKind.MIGRATE,
    #: decided by the infrastructure (`Infrastructure.tactic`): migrate or scale
    "scale_or_migrate": None,
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


@dataclass(frozen=True)
class SLOState:
    """Where an SLO stands: its status, since when it has had it, when it was last checked,
    and the result of that check (None when a stored one could not be read back)."""

    status: Status
    since: float
    checked: float
    result: SLOResult | None = None

    def after(self, result: SLOResult, now: float) -> SLOState:
        """The state after ``result``: ``since`` moves only when the status changes."""
        since = self.since if self.status == result.status else now
        return SLOState(result.status, since, now, result)

    def stored(self, slo: str) -> StoredSLOState:
        return StoredSLOState(
            slo,
            self.status,
            self.since,
            self.checked,
            self.result.as_dict() if self.result is not None else {},
        )

    @classmethod
    def restored(cls, stored: StoredSLOState) -> SLOState:
        return cls(
            cast(Status, stored.status), stored.since, stored.checked, _result_of(stored.result)
        )


class ContractKeeper:
    """The server's contracts: parsed once per version, checked as their windows close (or
    on demand, or by the server's periodic check), where their SLOs stand kept in the store
    and in memory for the status view."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self._lock = threading.Lock()
        #: app -> (version, contract), or None for an app known to have none (ingestion and
        #: the periodic check ask for every app's)
        self._parsed: dict[str, tuple[int, Contract] | None] = {}
        #: app -> (contract version, {slo: where it stands})
        self._states: dict[str, tuple[int, dict[str, SLOState]]] = {}
        self._schedules: dict[str, WindowSchedule] = {}
        #: one check at a time per app: two at once would both see an SLO newly violated
        self._checking: dict[str, threading.Lock] = {}
        self.queue = CheckQueue(self.check)

    def apply(self, app: App, text: str, form: ContractFormat | None = None) -> StoredContract:
        """Validate a contract for ``app``, store it as a new version and put it in force."""
        contract = read_contract(text, app, form)
        stored = self.server.store.add_contract(app, contract.model_dump(mode="json"))
        with self._lock:
            self._parsed[app.name] = (stored.version, contract)
            self._states.pop(app.name, None)
            self._schedules.pop(app.name, None)
        if self.server.replicas is not None:  # the others reread it; its checks get a lease
            self.server.replicas.contract_changed(app)
        return stored

    def forget(self, app: str) -> None:
        """Forget what was read of ``app``'s contract (the contract, where its SLOs stand,
        its window schedule): among replicas, another applied a new version, or this one
        took or lost the lease of its checks; all is read again from the store on use."""
        with self._lock:
            self._parsed.pop(app, None)
            self._states.pop(app, None)
            self._schedules.pop(app, None)

    def _fence(self, app: App) -> tuple[str, int] | None:
        """This replica's id and its token on ``app``'s contract lease (None on a single
        server): what a violation is recorded under."""
        replicas = self.server.replicas
        if replicas is None:
            return None
        token = replicas.token(app.name, CONTRACT_LEASE)
        if token is None:
            raise LeaseLost(f"{replicas.id} no longer checks the contract of {app.name}")
        return replicas.id, token

    def contract(self, app: App) -> tuple[int, Contract] | None:
        """The contract in force and its version."""
        with self._lock:
            if app.name in self._parsed:
                return self._parsed[app.name]
        stored = self.server.store.contract(app)
        parsed = None if stored is None else (stored.version, parse_contract(stored.document))
        with self._lock:  # a contract applied meanwhile wins over what was read before it
            return self._parsed.setdefault(app.name, parsed)

    def ingested(self, app: App, arrived: Mapping[str, int]) -> None:
        """Samples of ``app`` were stored (``arrived``: how many per service): if that closes
        a window of its contract, queue a check. On the request path, so it only counts; a
        failure is logged, never raised: the batch is stored, the periodic check remains."""
        try:
            schedule = self._schedule(app)
            if schedule is None:
                return
            with self._lock:
                due = schedule.feed(arrived, self.server.clock())
            if due:
                replicas = self.server.replicas
                if replicas is None or replicas.owns_contract(app.name):
                    self.queue.submit(app)
                else:  # the holder of the checks' lease checks it
                    replicas.ask_check(app)
        except Exception:
            logger.exception("counting %s's samples towards its contract windows failed", app.name)

    def fallback(self, app: App, every: float) -> list[SLOResult] | None:
        """The periodic check, for apps whose windows no samples close: check ``app`` if
        neither samples nor a check came for ``every`` seconds (None when skipped: while
        samples come, ingestion checks it as its windows close)."""
        if not self.server.holds_checks(app.name):
            return None  # the replica holding the contract lease does
        schedule = self._schedule(app)
        if schedule is None:
            return None
        with self._lock:
            idle = schedule.idle(self.server.clock(), every)
        return self.check(app) if idle else None

    def check(self, app: App) -> list[SLOResult]:
        """Evaluate the contract over the latest telemetry; record each SLO that became
        violated (with the action its remedy asks for) and store where each SLO stands.
        Runs in a worker thread; checks of one app run one at a time.

        Among replicas, a replica that does not hold the app's contract lease only
        evaluates (for ``POST .../contract/check``): it records nothing, keeps no state, and
        asks the holder to check, which records what it finds."""
        found = self.contract(app)
        if found is None:
            return []
        replicas = self.server.replicas
        if replicas is not None and not replicas.owns_contract(app.name):
            replicas.ask_check(app)
            return self._evaluate(app, found[1], self.server.clock())
        with self._lock:
            checking = self._checking.setdefault(app.name, threading.Lock())
        with checking:
            return self._check(app, *found)

    def _evaluate(self, app: App, contract: Contract, now: float) -> list[SLOResult]:
        """Every SLO's result over the latest telemetry (the contract's longest window)."""
        server = self.server
        span = max(
            slo.window.seconds if slo.window is not None and slo.window.seconds else 0.0
            for slo in contract.slos
        )
        span = max(span, contract.window.seconds or 0.0, 60.0)
        rows = list(server.store.telemetry(app, now - span, None, latest=MAX_CHECK_SAMPLES))
        rows.reverse()  # oldest first, as a window reads them
        nodes = {i.name: i.node for i in server.store.instances(app) if i.node}
        signals = server.observers.runner.signals(app.name) if server.observers.watches(app) else {}
        return evaluate(contract, app.structure, rows, nodes=nodes, signals=signals)

    def _check(self, app: App, version: int, contract: Contract) -> list[SLOResult]:
        """`check` under the app's check lock. A violation is recorded before the new
        states are kept (a failed record is tried again at the next check), and they are
        kept in memory before the store (a failed write repeats nothing until a restart)."""
        server = self.server
        now = server.clock()
        schedule = self._schedule(app)
        if schedule is not None:
            with self._lock:
                schedule.checked_at = now  # time windows close again from now on
        results = self._evaluate(app, contract, now)
        before = self.states(app, version)
        fresh = [
            r
            for r in results
            if r.status == "violated"
            and (r.slo not in before or before[r.slo].status != "violated")
        ]
        if fresh and not self.server.holds_checks(app.name):
            # the lease was taken over during the check: its new holder records (it reads
            # the SLO states stored by the last check here, so the episode is its to record)
            return results
        if fresh:
            try:
                self._record(app, version, contract, fresh, now)
            except LeaseLost as lost:  # taken over: the new holder records the episode
                logger.info("not recording %s's violations: %s", app.name, lost)
                return results
        states = {
            r.slo: before[r.slo].after(r, now)
            if r.slo in before
            else SLOState(r.status, now, now, r)
            for r in results
        }
        with self._lock:
            self._states[app.name] = (version, states)
        server.store.save_slo_states(app, version, [s.stored(n) for n, s in states.items()])
        return results

    def states(self, app: App, version: int | None = None) -> dict[str, SLOState]:
        """Where each SLO of the contract in force (or of ``version``) stands, by SLO: from
        memory, else as stored by the last check (none before the first)."""
        if version is None:
            found = self.contract(app)
            if found is None:
                return {}
            version = found[0]
        with self._lock:
            known = self._states.get(app.name)
        if known is not None and known[0] == version:
            return dict(known[1])
        restored = {s.slo: SLOState.restored(s) for s in self.server.store.slo_states(app, version)}
        if not self.server.holds_checks(app.name):
            return restored  # another replica checks: what it stored, read afresh each time
        with self._lock:  # a check that finished meanwhile knows better
            known = self._states.get(app.name)
            if known is None or known[0] != version:
                known = self._states[app.name] = (version, restored)
            return dict(known[1])

    def last(self, app: App) -> list[SLOResult]:
        """The SLOs' results of the latest check (none before the first), kept across
        restarts."""
        return [s.result for s in self.states(app).values() if s.result is not None]

    def _schedule(self, app: App) -> WindowSchedule | None:
        """The app's window schedule for the contract in force (made on first use)."""
        found = self.contract(app)
        if found is None:
            return None
        version, contract = found
        with self._lock:
            schedule = self._schedules.get(app.name)
            if schedule is None or schedule.version != version:
                schedule = self._schedules[app.name] = WindowSchedule.of(
                    version, contract, app.structure, self.server.clock()
                )
            return schedule

    def _record(
        self, app: App, version: int, contract: Contract, results: list[SLOResult], now: float
    ) -> None:
        """Record fresh violations with the actions their SLOs ask for (fenced by the
        contract lease among replicas: `LeaseLost` if another replica took the checks over
        meanwhile, and nothing is recorded here), then carry the actions out."""
        server = self.server
        replans: dict[int, Replan] = {}
        actions = [self._remedy(app, contract, r, now, replans, i) for i, r in enumerate(results)]
        rows = []
        for result in results:
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
                    "action_id": None,
                }
            )
        ids, stored = server.store.record_violations(app, rows, actions, self._fence(app))
        by_action = iter(stored)
        by_kubernetes: set[int] = set()
        for i, action in enumerate(actions):
            if action is None:
                continue
            done = next(by_action)
            rows[i]["action_id"] = done.id
            if i in replans:  # the new plan, pending until the action is carried out
                try:
                    if server.infrastructure.propose(app, replans[i], done):
                        by_kubernetes.add(done.id)
                except Exception as error:
                    logger.exception("storing the replanned deployment of %s failed", app.name)
                    server.store.finish_action(app, done.id, "failed", f"not stored: {error}")
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
                if a.kind != ActionKind.ALERT
                and a.id not in by_kubernetes
                and app.effector_url_of(a.service) is not None
            ]
            if pushed:
                server.pusher.submit(app, pushed)

    def _remedy(
        self,
        app: App,
        contract: Contract,
        result: SLOResult,
        now: float,
        replans: dict[int, Replan],
        index: int,
    ) -> dict[str, Any] | None:
        """The action a violated SLO's ``then`` asks for, aimed where its explanation points:
        the most to blame service (and instance) of the attribution, else its target. An
        infrastructure tactic's replan goes to ``replans[index]``; when none can be done
        (no deployment, cooling down, nowhere to go) there is no action, and the violation
        says why."""
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
        reason = result.explanation or f"{result.slo} violated"
        if kind is None or kind in INFRASTRUCTURE_KINDS:
            replan = self.server.infrastructure.tactic(
                app, kind, service, blamed.node if blamed is not None else None, now
            )
            if isinstance(replan, str) or not replan.done:
                why = replan if isinstance(replan, str) else replan.reason
                logger.info("no %s for %s/%s: %s", result.then, app.name, service, why)
                return None
            replans[index] = replan
            kind = ActionKind(replan.kind)
            reason = f"{reason}; {replan.reason}"
            context.update(
                replicas=sum(1 for p in replan.plan.placements if p.service == service),
                moves=[m.model_dump() for m in replan.moves],
            )
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
            "reason": reason[:2000],
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


def _result_of(data: Mapping[str, Any]) -> SLOResult | None:
    """An `SLOResult` back from its stored `SLOResult.as_dict` (None for NaN undone), or
    None, logged, when it does not read as one (stored by another version of Harmonia)."""
    if not data:
        return None
    try:
        checks = tuple(
            Check(**{**_known(Check, c), "value": _nan(c.get("value"))})
            for c in data.get("checks", ())
        )
        attribution = tuple(Attribution(**_known(Attribution, a)) for a in data["attribution"])
        return SLOResult(
            **{
                **_known(SLOResult, data),
                "checks": checks,
                "attribution": attribution,
            }
        )
    except (KeyError, TypeError, ValueError):
        logger.warning("a stored SLO result could not be read back: %.200s", data)
        return None


def _known(kind: type, data: Mapping[str, Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(kind)}
    return {k: v for k, v in data.items() if k in names}


def _nan(value: Any) -> float:
    return math.nan if value is None else float(value)
