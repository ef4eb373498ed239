"""The service layer: what the server does for a request, whatever carried it (HTTP routes,
broker bridges). It raises domain errors (`harmonia.server.errors`), never HTTP ones."""

import hashlib
import logging
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import orjson
from pydantic import (
    ValidationError,
)

from harmonia.core.actions import Action
from harmonia.core.errors import Issue, PolicyError
from harmonia.core.monitor import WindowSummary
from harmonia.core.pipeline import CarbonIntensity
from harmonia.core.policy import Policy
from harmonia.core.versions import ModelVersion
from harmonia.policies import check_plugins, parse_policy_text
from harmonia.server.contracts import ContractKeeper
from harmonia.server.delivery import Outbox, Pusher
from harmonia.server.domains import Domains
from harmonia.server.errors import (
    Forbidden,
    Invalid,
    Unauthorized,
)
from harmonia.server.fields import (
    APP_NAME_PATTERN,
)
from harmonia.server.infrastructure import INFRASTRUCTURE_KINDS, Infrastructure
from harmonia.server.leases import ReplicaOptions, Replicas
from harmonia.server.loop import Ingested, LiveLoop
from harmonia.server.observe import (
    Broadcaster,
    Counters,
    finite_or_none,
)
from harmonia.server.observers import ObserverWorker
from harmonia.server.principals import ADMIN, Principal, key_principal
from harmonia.server.schemas import (
    BATCH,
    SAMPLE_DEFAULTS,
    AppIn,
    InstanceIn,
    ResultIn,
    VersionIn,
    field_errors,
)
from harmonia.server.targets import TargetRefused, check_target
from harmonia.server.validation import BatchInvalid, BatchValidator, validate_columns
from harmonia.store import (
    DEFAULT_DOMAIN,
    App,
    Conflict,
    Instance,
    NotFound,
    Store,
    StoredAction,
    StoredPolicy,
    StoreError,
    hash_token,
    same_secret,
)
from harmonia.store.leases import LeaseLost

logger = logging.getLogger("harmonia.server")

#: a push still pending when the server starts is pushed again if decided this recently
STALE_PUSH_SECONDS = 600.0
APP_NAME = re.compile(APP_NAME_PATTERN)
#: columns whose null means the field's default, which is not null (`SAMPLE_DEFAULTS`)
_NOT_NULL = frozenset({"service", "metrics"})
BATCH_KEY = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


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
        carbon: CarbonIntensity | None = None,
        replica: ReplicaOptions | None = None,
    ):
        self.store = store
        self.admin_token = admin_token
        self.clock = clock
        self.guards = guards or Guards()
        #: each node's grid carbon intensity, for the energy view's gCO2e
        self.carbon = carbon or CarbonIntensity()
        #: one live loop per managed service, keyed by (app, service)
        self._loops: dict[tuple[str, str], LiveLoop] = {}
        #: services known to have no policy (so no live loop), until one is set
        self._no_policy: set[tuple[str, str]] = set()
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
        self.contracts = ContractKeeper(self)
        self.observers = ObserverWorker(self)
        #: the node inventory, deployments and infrastructure tactics
        self.infrastructure = Infrastructure(self)
        #: organisations, domains, their keys (and the cache requests' keys go through)
        self.domains = Domains(store, admin_token)
        #: this server's part among replicas on PostgreSQL (the leases of the loops it owns);
        #: None on SQLite or without leases: one server owns every loop
        self.replicas: Replicas | None = None
        if replica is not None and replica.lease_seconds > 0 and store.replicable:
            self.replicas = Replicas(self, replica)
            self.events = self.replicas.events

    def app(self, name: str) -> App:
        cached = self._apps.get(name)
        if cached is None:
            if not APP_NAME.match(name):  # never reaches the database (NUL, huge names)
                raise NotFound(f"no application named {name[:64]!r}")
            cached = self._apps[name] = self.store.app(name)
        return cached

    def app_token(self, name: str, token: str, *, ask_store: bool = True) -> bool:
        """Whether ``token`` is the app's; a verified token is remembered (as its hash).
        Without ``ask_store``, only what is remembered counts (no query)."""
        digest = hash_token(token)
        if self._tokens.get(name) == digest or digest in self._run_tokens.get(name, ()):
            return True
        if ask_store and self.store.check_token(name, token):
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

    def authorize(self, name: str, token: str | None, scope: str = "write") -> App:
        """The app, if ``token`` is its own, the admin's, or a key holding ``scope`` on the
        app's domain; else `Unauthorized`, `Forbidden` (naming the scope needed) or
        `NotFound`. Checked in this order: the admin token, the app's token as remembered,
        a key (cached; a token not shaped as one costs no query), then the app's token in
        the store: so the telemetry path pays nothing for keys, nor a key for app tokens."""
        app = self.app(name)
        if token is None:
            raise Unauthorized("missing token: send Authorization: Bearer <token>")
        if same_secret(token, self.admin_token) or self.app_token(name, token, ask_store=False):
            return app
        key = self.domains.keys.key(token)
        if key is not None:
            key_principal(key).require(app.domain, scope)
            return app
        if self.app_token(name, token):
            return app
        raise Forbidden(f"this token is not valid for {name!r}")

    def register(self, body: AppIn, caller: Principal = ADMIN) -> dict[str, Any]:
        """Register an application (a pipeline, or the one-stage form) in its domain (the
        ``default`` one if it names none), for the admin or a key with ``write`` there; its
        token is shown once, in the reply, with the ids of the app, its stages and its
        services. The registration, or its refusal, is in the audit log."""
        domain = body.domain or DEFAULT_DOMAIN
        resource = f"app:{body.name}"
        self.domains.require(caller, domain, "write", "app.register", resource)
        structure = body.structure()
        targets = [("effector_url", structure.effector_url)] + [
            (f"services.{service.name}.effector_url", service.effector_url)
            for service in structure.services
        ]
        for field, url in targets:
            if url is None:
                continue
            try:
                check_target(url, allow_link_local=self.guards.allow_link_local_targets)
            except TargetRefused as error:
                raise Invalid([{"field": field, "reason": str(error)}]) from None
        try:
            app, token = self.store.create_app(structure, domain=domain, by=caller.name)
        except StoreError as error:
            self.store.audit(
                caller.name,
                "app.register",
                resource,
                domain=domain,
                outcome="failed",
                detail=str(error),
            )
            if isinstance(error, Conflict):  # a StoreError too, but a 409, not a 422
                raise
            field = "domain" if isinstance(error, NotFound) else "name"
            raise Invalid([{"field": field, "reason": str(error)}]) from None
        return {
            "id": app.id,
            "name": app.name,
            "domain": app.domain,
            "stages": app.stage_ids,
            "services": app.service_ids,
            "token": token,
        }

    def service_of(self, app: App, service: str | None, *, reported: bool = False) -> str:
        """The service a request means: the one it names (`NotFound` if the app has none of
        that name), or, when it names none, the app's only service. A name a managed system
        reported (``reported``: in a version's description) may be any name in a one-service
        app, which is what apps registered before pipelines sent."""
        services = app.services
        if service is None or (reported and len(services) == 1):
            if len(services) == 1:
                return services[0]
            reason = f"{app.name} has several services: name one of {', '.join(services)}"
            raise Invalid([{"field": "service", "reason": reason}])
        if service not in services:
            known = ", ".join(services)
            if reported:
                reason = f"{app.name} has no service {service!r}; its services: {known}"
                raise Invalid([{"field": "service", "reason": reason}])
            raise NotFound(f"{app.name} has no service {service!r}; its services: {known}")
        return service

    def register_instance(self, app: App, service: str, body: InstanceIn) -> Instance:
        """An instance of ``service`` says it runs, and on which node."""
        return self.store.register_instance(
            app, self.service_of(app, service), body.name, node=body.node, labels=body.labels
        )

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
            batch: dict[str, Any] = (
                self.validator.validate(body)
                if isinstance(body, bytes)
                else validate_columns(body) or dict(BATCH.validate_python(body, strict=False))
            )
        except ValidationError as error:
            self.counters.rejected_batch(app.name)
            raise Invalid(field_errors(error)) from None
        except BatchInvalid as error:
            self.counters.rejected_batch(app.name)
            raise Invalid(error.issues) from None
        instance = batch.get("instance", "default")
        extra = {"app": app.name, "instance": instance, "input_summary": None}
        if "columns" in batch:
            rows, by_service = self._column_rows(app, batch["columns"], extra)
        else:
            samples = batch["samples"]
            self._check_clock(app, [s["ts"] for s in samples], "samples[{}].ts")
            rows = [{**SAMPLE_DEFAULTS, **sample, **extra} for sample in samples]
            by_service = self._place(app, rows)
        if self.replicas is not None:
            return self._ingest_as_replica(self.replicas, app, rows, by_service, instance, keyed)
        actions: list[dict[str, Any]] = []
        windows: list[dict[str, Any]] = []
        for service, served in by_service.items():
            loop = self.loop(app, service)
            decided = loop.ingest(served) if loop is not None else Ingested([], [])
            windows.extend(_window_view(w, service) for w in decided.windows)
            actions.extend(_action_row(a, service) for a in decided.actions)
        pull = [s for s in by_service if app.effector_url_of(s) is None]
        try:
            accepted, stored, delivered = self.store.ingest(
                app,
                rows,
                actions,
                pull=pull,
                instance=instance,
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
        self._stored(app, instance, rows, by_service, accepted, windows, stored)
        return {"accepted": accepted, "actions": [a.message() for a in delivered]}

    def _stored(
        self,
        app: App,
        instance: str | None,
        rows: list[dict[str, Any]],
        by_service: dict[str, list[dict[str, Any]]],
        accepted: int,
        windows: list[dict[str, Any]],
        stored: list[StoredAction],
    ) -> None:
        """What follows a stored batch on either path (loop owned here or not): counters,
        contract windows, observers, the telemetry event and the decisions'."""
        self.counters.ingested(app.name, accepted)
        self.contracts.ingested(app, {service: len(s) for service, s in by_service.items()})
        if self.observers.watches(app):
            self.observers.submit(app, rows)
        self.events.publish(
            app.name,
            "telemetry",
            {"instance": instance, "count": accepted, "last": finite_row(rows[-1])},
            raw=True,
        )
        self.publish_decisions(app, windows, stored)

    def publish_decisions(
        self, app: App, windows: list[dict[str, Any]], stored: list[StoredAction]
    ) -> None:
        """What a loop decided and the store recorded: the event stream shows its last
        windows and its actions, and actions aimed at push services are pushed."""
        for window in windows[-10:]:
            self.events.publish(app.name, "window", window)
        if stored:
            self.counters.decided(app.name, (a.kind for a in stored))
            for action in stored:
                self.events.publish(app.name, "action", action.__dict__)
            pushed = [a for a in stored if app.effector_url_of(a.service) is not None]
            if pushed:
                self.pusher.submit(app, pushed)

    @staticmethod
    def decisions_of(
        service: str, decided: Ingested
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """A loop's closed windows and decisions as the store records them."""
        return (
            [_window_view(w, service) for w in decided.windows],
            [_action_row(a, service) for a in decided.actions],
        )

    def _ingest_as_replica(
        self,
        replicas: Replicas,
        app: App,
        rows: list[dict[str, Any]],
        by_service: dict[str, list[dict[str, Any]]],
        instance: str,
        keyed: tuple[str, str] | None,
    ) -> dict[str, Any]:
        """`ingest` on one replica among several: the loops this replica owns decide on the
        batch as on a single server; the batch is stored (with the pull reply's pending
        actions); then what the owned loops decided is recorded, fenced by their leases, and
        the samples of the loops owned elsewhere go to their inboxes, for their owners.

        A decision refused because the lease was taken over meanwhile drops the loop here
        and hands its samples on as well. Once the batch is stored it is acknowledged, even
        if recording a decision then fails (the loop is rebuilt from the store)."""
        owned: dict[str, tuple[int, list[dict[str, Any]], list[dict[str, Any]]]] = {}
        handed: dict[str, list[dict[str, Any]]] = {}
        for service, served in by_service.items():
            token = replicas.token(app.name, service)
            loop = self.loop(app, service) if token is not None else None
            if token is not None and loop is not None:
                owned[service] = (token, *self.decisions_of(service, loop.ingest(served)))
            elif replicas.has_policy(app, service):
                handed[service] = served
        pull = [s for s in by_service if app.effector_url_of(s) is None]
        try:
            accepted, _, delivered = self.store.ingest(
                app, rows, [], pull=pull, instance=instance, key=keyed
            )
        except Conflict:  # the same key, stored meanwhile by a concurrent retry
            self.forget_loop(app)
            assert keyed is not None
            return self._replayed(app, keyed) or {"accepted": 0, "actions": []}
        except Exception:
            self.forget_loop(app)
            raise
        messages = [a.message() for a in delivered]
        windows: list[dict[str, Any]] = []
        stored: list[StoredAction] = []
        for service, (token, closed, decided) in owned.items():
            if not closed and not decided:
                continue
            try:
                recorded, more = self.store.record_decisions(
                    app,
                    service,
                    replicas.id,
                    token,
                    windows=closed,
                    actions=decided,
                    deliver_to=instance if service in pull else None,
                    reply=None
                    if keyed is None
                    else (keyed[0], {"accepted": accepted, "actions": messages}),
                )
            except LeaseLost as error:
                replicas.lost(app.name, service, error)
                handed[service] = by_service[service]
                continue
            except Exception:
                logger.exception("recording what %s/%s decided failed", app.name, service)
                self.drop_loop(app.name, service)
                continue
            windows.extend(closed)
            stored.extend(recorded)
            messages.extend(a.message() for a in more)
        for service, served in handed.items():
            try:
                self.store.enqueue(app, service, served)
            except Exception:  # stored all the same: only the owner's loop misses them
                logger.exception("handing %s/%s's samples to its owner failed", app.name, service)
        self._stored(app, instance, rows, by_service, accepted, windows, stored)
        return {"accepted": accepted, "actions": messages}

    def _column_rows(
        self, app: App, columns: dict[str, list[Any]], extra: dict[str, Any]
    ) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
        """A columnar batch's rows (every `TelemetrySample` field, as the row form's) and
        their grouping by service, as `_place` gives it. What the row form checks per
        sample is checked per column here: the lengths, the clock on the latest ``ts``, and
        for an app of one service, the stages the column names. Errors name the column and
        the sample's index: ``columns.ts[3]``."""
        count = len(columns["ts"])
        uneven = [
            {
                "field": f"columns.{name}",
                "reason": f"has {len(values)} values; columns.ts has {count}",
            }
            for name, values in columns.items()
            if len(values) != count
        ]
        if uneven:
            self.counters.rejected_batch(app.name)
            raise Invalid(uneven[:20])
        self._check_clock(app, columns["ts"], "columns.ts[{}]")
        # Each row is a copy of what the samples share (the defaults, the batch's instance,
        # a column of one value throughout: the model, often its version) updated with the
        # columns that vary: twice as fast as a dict built from every field.
        template = {**SAMPLE_DEFAULTS, **extra}
        varying: dict[str, list[Any]] = {}
        for name, values in columns.items():
            if name in _NOT_NULL and None in values:  # null: the sample's default
                fill = SAMPLE_DEFAULTS[name]
                values = [fill if v is None else v for v in values]
            if values.count(values[0]) == count:
                template[name] = values[0]
            else:
                varying[name] = values
        placed = None
        if len(app.services) == 1:  # the common case: any name is the service's
            stage = app.structure.stages[0].name
            stages = columns.get("stage", ())
            if any(s not in (None, stage) for s in set(stages)):
                i = next(i for i, s in enumerate(stages) if s not in (None, stage))
                named = columns.get("service")
                where = {"service": "default" if named is None else named[i], "stage": stages[i]}
                raise Invalid([_wrong_stage(app, i, where, stage, f"columns.stage[{i}]")])
            placed = template["service"] = app.services[0]
            template["stage"] = stage
            varying.pop("service", None)
            varying.pop("stage", None)
        # C-level passes (``map`` drained by a ``deque`` of no length): no bytecode per row
        rows: list[dict[str, Any]] = list(map(dict.copy, repeat(template, count)))
        if varying:
            pairs = map(zip, repeat(list(varying)), zip(*varying.values(), strict=True))
            deque(map(dict.update, rows, pairs), maxlen=0)
        if placed is not None:
            return rows, {placed: rows}
        return rows, self._place(app, rows, "columns.{1}[{0}]")

    def _place(
        self, app: App, rows: list[dict[str, Any]], where: str = "samples[{0}].{1}"
    ) -> dict[str, list[dict[str, Any]]]:
        """Give each sample its service and stage, and group the batch by service (in
        order); `Invalid` names each sample whose service or stage the app does not have
        (``where``: the field of sample {0}'s {1}, by the batch's form)."""
        structure = app.structure
        if len(app.services) == 1:  # the common case, one pass: any name is the service's
            service = app.services[0]
            stage = structure.stages[0].name
            for row in rows:
                if row["stage"] not in (None, stage):
                    index = rows.index(row)
                    field = where.format(index, "stage")
                    raise Invalid([_wrong_stage(app, index, row, stage, field)])
                row["service"], row["stage"] = service, stage
            return {service: rows}
        stage_of = {s.name: stage.name for stage in structure.stages for s in stage.services}
        groups: dict[str, list[dict[str, Any]]] = {}
        issues = []
        for i, row in enumerate(rows):
            found = stage_of.get(row["service"])
            if found is None:
                reason = f"{app.name} has no service {row['service']!r}; its services: " + (
                    ", ".join(app.services)
                )
                issues.append({"field": where.format(i, "service"), "reason": reason})
            elif row["stage"] not in (None, found):
                issues.append(_wrong_stage(app, i, row, found, where.format(i, "stage")))
            else:
                row["stage"] = found
                groups.setdefault(row["service"], []).append(row)
        if issues:
            self.counters.rejected_batch(app.name)
            raise Invalid(issues[:20])
        return groups

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

    def _check_clock(self, app: App, stamps: list[float], field: str) -> None:
        """Refuse samples stamped too far ahead of the server's clock: a time window would
        wait for that moment to close, deciding nothing meanwhile. ``field``: where sample
        {}'s ``ts`` is in the batch's form."""
        latest = self.clock() + self.guards.max_clock_skew_s
        if max(stamps) <= latest:  # one C-level pass for the usual batch
            return
        ahead = [
            {
                "field": field.format(i),
                "reason": f"is {ts - latest + self.guards.max_clock_skew_s:.0f} s ahead "
                f"of the server's clock (at most {self.guards.max_clock_skew_s:.0f} s allowed)",
            }
            for i, ts in enumerate(stamps)
            if ts > latest
        ]
        if ahead:
            self.counters.rejected_batch(app.name)
            raise Invalid(ahead[:20])

    def forget_loop(self, app: App) -> None:
        """Drop the app's live loops; the next request rebuilds them from the store."""
        with self._lock:
            for key in [key for key in self._loops if key[0] == app.name]:
                del self._loops[key]
            self._no_policy = {key for key in self._no_policy if key[0] != app.name}

    def drop_loop(self, app: str, service: str) -> None:
        """Drop one live loop: a replica lost it, or it must be rebuilt from the store."""
        with self._lock:
            self._loops.pop((app, service), None)

    def finish_action(self, app: App, action_id: int, result: ResultIn) -> dict[str, Any]:
        """What the managed system did with an action: applied or failed, and why."""
        action = self.store.finish_action(app, action_id, result.status, result.reason)
        self.action_changed(app, action)
        return {"id": action.id, "status": action.status}

    def action_changed(self, app: App, action: StoredAction) -> None:
        """An action moved on in its lifecycle: the event stream says so, and a failed one
        may be decided again."""
        self.events.publish(app.name, "action", action.__dict__)
        if action.kind in INFRASTRUCTURE_KINDS:
            self.infrastructure.settle(app, action)
        if action.status == "failed":
            loop = self._loops.get((app.name, action.service))
            if loop is not None:
                loop.action_failed()

    def resume_pushes(
        self,
        *,
        stale_after: float = STALE_PUSH_SECONDS,
        only: set[tuple[str, str]] | None = None,
    ) -> None:
        """After a restart: push again what was pending for push applications (it may have
        been in flight when the server stopped), or fail it if it is too old to matter.
        With ``only``, just the actions of those (app, service): the loops a replica has
        taken over (among replicas, a replica that starts leaves the others' alone)."""
        if only is None and self.replicas is not None:
            return  # each loop's pushes are resumed by the replica that takes it
        now = self.clock()
        for app in self.store.apps():
            if all(app.effector_url_of(s) is None for s in app.services):
                continue
            if only is not None and not any((app.name, s) in only for s in app.services):
                continue
            pending = sorted(
                (
                    a
                    for a in self.store.actions(app, "pending")
                    if app.effector_url_of(a.service) is not None
                    and (only is None or (app.name, a.service) in only)
                ),
                key=lambda a: a.id,
            )
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
        """Store what the system says of a model version and tell its service's loop."""
        service = self.service_of(app, description.service, reported=True)
        try:
            stored = self.store.put_version(
                app,
                service,
                model,
                version,
                fingerprint=description.fingerprint,
                metadata=description.details,
                created=description.created,
            )
        except StoreError as error:
            raise Invalid([{"field": "model", "reason": str(error)}]) from None
        loop = self.loop(app, service)
        if loop is not None:
            loop.describe_version(stored)
        elif self.replicas is not None:  # the replica that owns the loop tells it
            self.replicas.version_described(app, service, model, version)
        return version_view(stored)

    def version_stored(self, name: str, service: str, model: str, version: int) -> None:
        """Another replica stored a version's description: the loop, if owned here, learns
        it."""
        with self._lock:
            loop = self._loops.get((name, service))
        if loop is None:
            return
        app = self.app(name)
        for described in self.store.versions(app, service):
            if (described.model, described.version) == (model, version):
                loop.describe_version(described)

    def policy_stored(self, name: str, service: str) -> None:
        """Another replica applied a policy: it is in force here from the next window, if
        this replica owns the loop (a loop built later reads it from the store)."""
        key = (name, service)
        with self._lock:
            self._no_policy.discard(key)
            loop = self._loops.get(key)
        if loop is None:
            return
        stored = self.store.policy(self.app(name), service)
        if stored is not None:
            loop.replace_policy(parse_policy_text(orjson.dumps(stored.document).decode()))

    def holds_checks(self, name: str) -> bool:
        """Whether this server checks app ``name``'s contract and runs its observers: a
        single server always; among replicas, the holder of the app's checks' lease."""
        return self.replicas is None or self.replicas.owns_contract(name)

    def heard(self, name: str, event: str, data: dict[str, Any]) -> None:
        """An event of another replica that the loops owned here need: an action that
        failed (it may be decided again), an observer's result (the policy reads it)."""
        if event == "action" and data.get("status") == "failed":
            with self._lock:
                loop = self._loops.get((name, str(data.get("service"))))
            if loop is not None:
                loop.action_failed()
        elif event == "observation" and data.get("error") is None:
            with self._lock:
                loops = [loop for key, loop in self._loops.items() if key[0] == name]
            for loop in loops:
                loop.note_observation(str(data["name"]), dict(data.get("values") or {}))

    def loop(self, app: App, service: str) -> LiveLoop | None:
        """The live loop of ``service``; None while it has no policy."""
        key = (app.name, service)
        with self._lock:
            loop = self._loops.get(key)
            if loop is None:
                if key in self._no_policy:  # asked before: not a query per batch
                    return None
                if self.replicas is not None and self.replicas.token(*key) is None:
                    return None  # another replica owns it, or none does yet
                stored = self.store.policy(app, service)
                if stored is None:
                    self._no_policy.add(key)
                    return None
                policy = parse_policy_text(orjson.dumps(stored.document).decode())
                loop = self._loops[key] = self._new_loop(app, service, policy)
            return loop

    def loops(self, app: App) -> dict[str, LiveLoop]:
        """The live loops of the app's services that have a policy, by service."""
        found = {service: self.loop(app, service) for service in app.services}
        return {service: loop for service, loop in found.items() if loop is not None}

    def _new_loop(self, app: App, service: str, policy: Policy) -> LiveLoop:
        """A loop rebuilt from the store (after a restart, or after a failed write): the
        versions the service described, what it served last, the action still on its way."""
        loop = LiveLoop(f"{app.name}/{service}", policy, clock=self.clock)
        for version in self.store.versions(app, service):
            loop.describe_version(version)
        open_actions = [
            a
            for status in ("pending", "delivered")
            for a in self.store.actions(app, status, limit=1, service=service)
        ]
        latest = max(open_actions, key=lambda a: a.id) if open_actions else None
        loop.restore(
            self.store.last_served(app, service),
            None if latest is None else (latest.kind, latest.model, latest.version),
        )
        return loop

    def apply_policy(self, app: App, text: str, service: str | None = None) -> StoredPolicy:
        """Validate a policy for ``service`` (an app's only service by default), store it as
        a new version and put it in force; `PolicyError` lists every issue with its field."""
        service = self.service_of(app, service)
        policy = parse_policy_text(text, "request body")
        check_plugins(policy)
        issues = []
        if policy.system != app.name:
            issues.append(Issue("system", f"is {policy.system!r}, not {app.name!r}"))
        models = app.structure.service(service).models
        unknown = sorted(set(policy.models) - set(models))
        if unknown:
            issues.append(
                Issue("models", f"{app.name}/{service} cannot serve {', '.join(unknown)}")
            )
        if issues:
            raise PolicyError(issues)
        document = policy.model_dump(mode="json", exclude_none=True)
        stored = self.store.add_policy(app, service, document)
        self.set_policy(app, service, policy)
        return stored

    def set_policy(self, app: App, service: str, policy: Policy) -> None:
        key = (app.name, service)
        if self.replicas is not None:  # in force where the loop is owned
            self.replicas.policy_changed(app, service)
            if self.replicas.token(*key) is None:
                with self._lock:
                    self._no_policy.discard(key)
                return
        with self._lock:
            self._no_policy.discard(key)
            loop = self._loops.get(key)
            if loop is None:
                self._loops[key] = self._new_loop(app, service, policy)
            else:
                loop.replace_policy(policy)


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


def version_view(version: ModelVersion) -> dict[str, Any]:
    return {
        "service": version.service,
        "model": version.model,
        "version": version.version,
        "created": version.created,
        "details": version.metadata,
        "fingerprint_size": len(version.fingerprint),
    }


def _window_view(summary: WindowSummary, service: str) -> dict[str, Any]:
    return {
        "service": service,
        "start": summary.start,
        "end": summary.end,
        "model": summary.model,
        "version": summary.version,
        "count": summary.count,
        "signals": {k: finite_or_none(v) for k, v in summary.signals.items()},
    }


def finite_row(row: dict[str, Any]) -> dict[str, Any]:
    return {k: finite_or_none(v) for k, v in row.items()}


def _wrong_stage(
    app: App, index: int, row: dict[str, Any], stage: str, field: str | None = None
) -> dict[str, str]:
    reason = f"{app.name}/{row['service']} is in stage {stage!r}, not {row['stage']!r}"
    return {"field": field or f"samples[{index}].stage", "reason": reason}


def _action_row(action: Action, service: str) -> dict[str, Any]:
    return {
        "service": service,
        "instance": None,
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
