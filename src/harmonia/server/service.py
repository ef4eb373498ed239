"""The service layer: what the server does for a request, whatever carried it (HTTP routes,
broker bridges). It raises domain errors (`harmonia.server.errors`), never HTTP ones."""

import logging
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from harmonia.core.errors import Issue, PolicyError
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
from harmonia.server.ingest import Ingestion
from harmonia.server.leases import ReplicaOptions, Replicas
from harmonia.server.loop import LiveLoop
from harmonia.server.observe import (
    Broadcaster,
    Counters,
    finite_or_none,
)
from harmonia.server.observers import ObserverWorker
from harmonia.server.principals import ADMIN, Principal, key_principal
from harmonia.server.schemas import (
    AppIn,
    InstanceIn,
    ResultIn,
    VersionIn,
)
from harmonia.server.targets import TargetRefused, check_target
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

logger = logging.getLogger("harmonia.server")

#: a push still pending when the server starts is pushed again if decided this recently
STALE_PUSH_SECONDS = 600.0
APP_NAME = re.compile(APP_NAME_PATTERN)


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
        self.pusher = Pusher(store, self.outbox, on_finish=self.action_changed)
        self.counters = Counters()
        #: telemetry batches: validation, the loops' decisions, the transaction, what follows
        self.ingestion = Ingestion(self)
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
        """A batch of telemetry, validated, decided on and stored in one transaction
        (`harmonia.server.ingest.Ingestion.ingest`)."""
        return self.ingestion.ingest(app, body, key)

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


def version_view(version: ModelVersion) -> dict[str, Any]:
    return {
        "service": version.service,
        "model": version.model,
        "version": version.version,
        "created": version.created,
        "details": version.metadata,
        "fingerprint_size": len(version.fingerprint),
    }


def finite_row(row: dict[str, Any]) -> dict[str, Any]:
    return {k: finite_or_none(v) for k, v in row.items()}
