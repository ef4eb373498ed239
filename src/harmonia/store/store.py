"""The store: one object over one database (SQLite by default, PostgreSQL for scale).

Every write is one transaction: a telemetry batch is stored whole or not at all. Telemetry
goes in with a Core ``executemany`` insert (the ORM's per-object work would cost more than
the database itself); reads return plain dataclasses, never live ORM objects.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
from alembic import command
from alembic.config import Config
from sqlalchemy import (
    Connection,
    Engine,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from harmonia.core.application import Application
from harmonia.core.errors import HarmoniaError
from harmonia.core.versions import ModelVersion
from harmonia.store.tables import (
    ActionRow,
    AppRow,
    BatchKeyRow,
    HarmonicaPolicyRow,
    HarmonicaRecordRow,
    InstanceRow,
    ModelVersionRow,
    NodeRow,
    PolicyRow,
    ServiceRow,
    StageRow,
    TelemetryRow,
    WindowRow,
)

logger = logging.getLogger("harmonia.store")
#: how often the SQLite write-ahead log is copied back into the database
CHECKPOINT_SECONDS = 0.5
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
#: a sample as stored; its stage is not (a service belongs to one stage), only exported
STORED_COLUMNS = (
    "service",
    "instance",
    "model",
    "model_version",
    "ts",
    "latency_ms",
    "energy_j",
    "energy_source",
    "prediction",
    "target",
    "drift_value",
    "metrics",
    "trace_id",  # last: a batch without traces leaves it out of its insert
)
#: a sample as exported: the stored columns with the stage of its service
TELEMETRY_COLUMNS = ("stage", *STORED_COLUMNS)
ACTION_STATUSES = ("pending", "delivered", "applied", "failed")
#: how long a batch's idempotency key is remembered (a retry comes within minutes)
BATCH_KEY_SECONDS = 24 * 3600
#: keyed batches stored between two purges of expired keys
BATCH_KEY_PURGE_EVERY = 1000


class StoreError(HarmoniaError):
    """A request the store cannot satisfy; the message says why."""


class NotFound(StoreError, LookupError):
    pass


class Conflict(StoreError):
    pass


@dataclass(frozen=True)
class App:
    """A registered application with its structure (stages, services, the models each may
    serve); ``service_ids`` are the database ids that registration replies show."""

    id: int
    name: str
    owner: str
    effector_url: str | None
    created: float
    structure: Application
    stage_ids: dict[str, int]
    service_ids: dict[str, int]
    #: the names of the app's services, stage by stage (read on every telemetry batch)
    services: tuple[str, ...] = field(init=False)
    _effector_urls: dict[str, str | None] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        services = self.structure.services
        object.__setattr__(self, "services", tuple(s.name for s in services))
        urls = {s.name: s.effector_url or self.effector_url for s in services}
        object.__setattr__(self, "_effector_urls", urls)

    @property
    def models(self) -> list[str]:
        """Every model some service of the app may serve."""
        return self.structure.models

    def effector_url_of(self, service: str) -> str | None:
        """Where ``service``'s effector listens: its own URL, else the app's."""
        if service not in self._effector_urls:
            self.structure.service(service)  # the KeyError that names the services
        return self._effector_urls[service]


@dataclass(frozen=True)
class Instance:
    """An instance of a service as it registered, with its node and the node's labels."""

    service: str
    name: str
    node: str | None
    labels: dict[str, str]
    registered: float


@dataclass(frozen=True)
class StoredPolicy:
    app: str
    service: str
    version: int
    document: dict[str, Any]
    created: float


@dataclass(frozen=True)
class StoredAction:
    id: int
    app_id: int
    service: str
    instance: str | None
    kind: str
    model: str | None
    version: int | None
    ts: float
    strategy: str
    reason: str
    trigger: str
    values: dict[str, float]
    context: dict[str, Any]
    status: str
    delivered_at: float | None
    finished_at: float | None
    detail: str

    def message(self) -> dict[str, Any]:
        """The form the sdk receives in a telemetry reply."""
        return {
            "id": self.id,
            "service": self.service,
            "instance": self.instance,
            "kind": self.kind,
            "model": self.model,
            "version": self.version,
            "reason": self.reason,
            "trigger": self.trigger,
            "values": self.values,
        }


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
    cursor.execute("PRAGMA synchronous=NORMAL")  # a commit survives a crash of the process
    # No checkpoint inside a commit (it writes back and fsyncs: milliseconds on the request
    # that happens to cross the threshold); the store's checkpointer thread does it instead.
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def sqlite_url(data_dir: Path) -> str:
    data_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{data_dir / 'harmonia.db'}"


class Store:
    """Applications, policies, telemetry and actions in one database."""

    def __init__(self, url: str, *, clock: Callable[[], float] = time.time) -> None:
        self.url = url
        self.clock = clock
        self.engine: Engine = create_engine(
            url, json_serializer=lambda value: orjson.dumps(value).decode()
        )
        self._write_lock: threading.Lock | None = None
        self._keyed = 0
        self._closing = threading.Event()
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
            self._write_lock = threading.Lock()
        self.migrate()
        if self._write_lock is not None:
            threading.Thread(
                target=self._checkpoint_every, args=(CHECKPOINT_SECONDS,), daemon=True
            ).start()

    def migrate(self) -> None:
        """Bring the schema to the latest migration (Alembic), idempotently."""
        config = Config()
        config.set_main_option(
            "script_location", str(resources.files("harmonia.store") / "migrations")
        )
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def close(self) -> None:
        self._closing.set()
        self.engine.dispose()

    def _checkpoint_every(self, seconds: float) -> None:
        """Copy the WAL back into the database off the request path. PASSIVE never waits
        for readers or writers; whatever it cannot copy now, it copies next time."""
        while not self._closing.wait(seconds):
            try:
                with self.engine.connect() as connection:
                    connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
            except Exception:  # a busy or closing database: try again next time
                logger.debug("WAL checkpoint skipped", exc_info=True)

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        """A write transaction. On SQLite, writers queue on a lock in this process: SQLite
        lets one writer in at a time and makes the others poll with sleeps of up to 25 ms,
        which would put those sleeps into the latency of every request that waits."""
        if self._write_lock is None:
            with self.engine.begin() as connection:
                yield connection
            return
        with self._write_lock, self.engine.begin() as connection:
            yield connection

    # -- applications -------------------------------------------------------------------
    def create_app(self, structure: Application) -> tuple[App, str]:
        """Register an application with its stages and services; returns it and its probe
        token (shown only once)."""
        if not NAME.match(structure.name):
            raise StoreError(
                f"name {structure.name!r}: use 1-64 lowercase letters, digits, '-' or '_', "
                "starting with a letter or digit"
            )
        token = secrets.token_urlsafe(32)
        now = self.clock()
        with self._tx() as tx:
            if tx.scalar(select(AppRow.id).where(AppRow.name == structure.name)) is not None:
                raise Conflict(f"an application named {structure.name!r} is already registered")
            app_id = tx.execute(
                insert(AppRow)
                .values(
                    name=structure.name,
                    owner=structure.owner,
                    token_hash=hash_token(token),
                    effector_url=structure.effector_url,
                    created=now,
                )
                .returning(AppRow.id)
            ).scalar_one()
            position = 0
            for stage_position, stage in enumerate(structure.stages):
                stage_id = tx.execute(
                    insert(StageRow)
                    .values(
                        app_id=app_id,
                        name=stage.name,
                        position=stage_position,
                        after=list(stage.after),
                    )
                    .returning(StageRow.id)
                ).scalar_one()
                for service in stage.services:
                    service_id = tx.execute(
                        insert(ServiceRow)
                        .values(
                            app_id=app_id,
                            stage_id=stage_id,
                            name=service.name,
                            position=position,
                            models=list(service.models),
                            effector_url=service.effector_url,
                        )
                        .returning(ServiceRow.id)
                    ).scalar_one()
                    position += 1
                    for instance in service.instances:
                        tx.execute(
                            insert(InstanceRow).values(
                                service_id=service_id, name=instance, registered=now
                            )
                        )
        return self.app(structure.name), token

    def app(self, name: str) -> App:
        with self.engine.connect() as connection:
            row = connection.execute(select(AppRow).where(AppRow.name == name)).first()
            if row is None:
                raise NotFound(f"no application named {name!r}")
            return _app(connection, row)

    def apps(self) -> list[App]:
        with self.engine.connect() as connection:
            rows = connection.execute(select(AppRow).order_by(AppRow.name)).all()
            return [_app(connection, row) for row in rows]

    # -- instances and nodes ----------------------------------------------------------------
    def register_instance(
        self,
        app: App,
        service: str,
        name: str,
        *,
        node: str | None = None,
        labels: dict[str, str] | None = None,
    ) -> Instance:
        """An instance of ``service`` says it runs (on ``node``, whose labels it gives);
        registering again updates its node. Returns it as stored."""
        service_id = app.service_ids.get(service)
        if service_id is None:
            raise NotFound(
                f"{app.name} has no service {service!r}; its services: " + ", ".join(app.services)
            )
        now = self.clock()
        with self._tx() as tx:
            node_id = None
            if node is not None:
                node_id = tx.scalar(select(NodeRow.id).where(NodeRow.name == node))
                if node_id is None:
                    node_id = tx.execute(
                        insert(NodeRow)
                        .values(name=node, labels=dict(labels or {}), updated=now)
                        .returning(NodeRow.id)
                    ).scalar_one()
                elif labels is not None:
                    tx.execute(
                        update(NodeRow)
                        .where(NodeRow.id == node_id)
                        .values(labels=dict(labels), updated=now)
                    )
            found = tx.scalar(
                select(InstanceRow.id).where(
                    InstanceRow.service_id == service_id, InstanceRow.name == name
                )
            )
            if found is None:
                tx.execute(
                    insert(InstanceRow).values(
                        service_id=service_id, name=name, node_id=node_id, registered=now
                    )
                )
            elif node_id is not None:
                tx.execute(
                    update(InstanceRow).where(InstanceRow.id == found).values(node_id=node_id)
                )
        return next(i for i in self.instances(app) if (i.service, i.name) == (service, name))

    def instances(self, app: App) -> list[Instance]:
        """Every registered instance of the app's services, by service then name."""
        query = (
            select(
                ServiceRow.name.label("service"),
                InstanceRow.name,
                NodeRow.name.label("node"),
                NodeRow.labels,
                InstanceRow.registered,
            )
            .join(ServiceRow, InstanceRow.service_id == ServiceRow.id)
            .outerjoin(NodeRow, InstanceRow.node_id == NodeRow.id)
            .where(ServiceRow.app_id == app.id)
            .order_by(ServiceRow.position, InstanceRow.name)
        )
        with self.engine.connect() as connection:
            return [
                Instance(r.service, r.name, r.node, dict(r.labels or {}), r.registered)
                for r in connection.execute(query)
            ]

    def check_token(self, name: str, token: str) -> bool:
        with self.engine.connect() as connection:
            stored = connection.scalar(select(AppRow.token_hash).where(AppRow.name == name))
        return stored is not None and secrets.compare_digest(stored, hash_token(token))

    # -- policies -------------------------------------------------------------------------
    def add_policy(self, app: App, service: str, document: dict[str, Any]) -> StoredPolicy:
        """Store a new version of ``service``'s policy (already validated)."""
        with self._tx() as tx:
            latest = tx.scalar(
                select(func.max(PolicyRow.version)).where(
                    PolicyRow.app_id == app.id, PolicyRow.service == service
                )
            )
            version = (latest or 0) + 1
            created = self.clock()
            tx.execute(
                insert(PolicyRow).values(
                    app_id=app.id,
                    service=service,
                    version=version,
                    document=document,
                    created=created,
                )
            )
        return StoredPolicy(app.name, service, version, document, created)

    def policies(self, app: App, service: str | None = None) -> list[StoredPolicy]:
        """Every version of the policies of the app (or of one service), oldest first; the
        last of a service is in force."""
        query = select(PolicyRow).where(PolicyRow.app_id == app.id)
        if service is not None:
            query = query.where(PolicyRow.service == service)
        with self.engine.connect() as connection:
            rows = connection.execute(query.order_by(PolicyRow.version, PolicyRow.id)).all()
        return [StoredPolicy(app.name, r.service, r.version, r.document, r.created) for r in rows]

    def policy(self, app: App, service: str, version: int | None = None) -> StoredPolicy | None:
        """A version of ``service``'s policy, by default the one in force."""
        query = select(PolicyRow).where(PolicyRow.app_id == app.id, PolicyRow.service == service)
        query = (
            query.where(PolicyRow.version == version)
            if version is not None
            else query.order_by(PolicyRow.version.desc()).limit(1)
        )
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        if row is None:
            return None
        return StoredPolicy(app.name, service, row.version, row.document, row.created)

    # -- telemetry ------------------------------------------------------------------------
    def insert_telemetry(self, app: App, rows: Sequence[dict[str, Any]]) -> int:
        """Store validated samples in one transaction; returns how many."""
        params = _telemetry_params(app, rows)
        with self._tx() as tx:
            return _insert_telemetry(tx, params)

    def ingest(
        self,
        app: App,
        rows: Sequence[dict[str, Any]],
        actions: Sequence[dict[str, Any]],
        *,
        pull: Sequence[str] = (),
        instance: str | None = None,
        windows: Sequence[dict[str, Any]] = (),
        key: tuple[str, str] | None = None,
    ) -> tuple[int, list[StoredAction], list[StoredAction]]:
        """A telemetry batch, the windows it closed, the decisions it triggered and the actions
        its reply carries (pending ones aimed at the ``pull`` services, at every instance or
        at ``instance``) — in one transaction, one commit per request.
        With an idempotency ``key`` (the key and the batch's digest), the reply is kept under
        it (`batch_reply`); a key stored already raises `Conflict` and stores nothing.

        Returns (samples stored, actions recorded, actions delivered).
        """
        params = _telemetry_params(app, rows)
        try:
            with self._tx() as tx:
                accepted = _insert_telemetry(tx, params)
                if windows:
                    tx.execute(_INSERT_WINDOW, [{**w, "app_id": app.id} for w in windows])
                stored = _add_actions(tx, app, actions)
                delivered = _deliver_pending(tx, app, self.clock(), pull, instance) if pull else []
                if key is not None:
                    self._keep_reply(tx, app, key, accepted, delivered)
        except IntegrityError as error:
            if key is not None and self.batch_reply(app, key[0]) is not None:
                raise Conflict(f"batch {key[0]!r} is stored already") from None
            raise error
        return accepted, stored, delivered

    def _keep_reply(
        self,
        tx: Any,
        app: App,
        key: tuple[str, str],
        accepted: int,
        delivered: list[StoredAction],
    ) -> None:
        now = self.clock()
        reply = {"accepted": accepted, "actions": [a.message() for a in delivered]}
        row = {"app_id": app.id, "key": key[0], "digest": key[1], "created": now, "reply": reply}
        tx.execute(_INSERT_BATCH_KEY, row)
        self._keyed += 1
        if self._keyed % BATCH_KEY_PURGE_EVERY == 0:
            tx.execute(delete(BatchKeyRow).where(BatchKeyRow.created < now - BATCH_KEY_SECONDS))

    def batch_reply(self, app: App, key: str) -> tuple[str, dict[str, Any]] | None:
        """The digest of the batch stored under idempotency ``key`` and the reply it got."""
        with self.engine.connect() as connection:
            row = connection.execute(
                select(BatchKeyRow.digest, BatchKeyRow.reply).where(
                    BatchKeyRow.app_id == app.id, BatchKeyRow.key == key
                )
            ).first()
        return None if row is None else (row.digest, dict(row.reply))

    def last_served(self, app: App, service: str) -> tuple[str, int | None] | None:
        """The model and version of the service's latest stored sample (what was serving)."""
        with self.engine.connect() as connection:
            row = connection.execute(
                select(TelemetryRow.model, TelemetryRow.model_version)
                .where(TelemetryRow.app_id == app.id, TelemetryRow.service == service)
                .order_by(TelemetryRow.id.desc())
                .limit(1)
            ).first()
        return None if row is None else (row.model, row.model_version)

    def count_telemetry(self, app: App) -> int:
        with self.engine.connect() as connection:
            return int(
                connection.scalar(
                    select(func.count())
                    .select_from(TelemetryRow)
                    .where(TelemetryRow.app_id == app.id)
                )
                or 0
            )

    def telemetry(
        self,
        app: App,
        start: float | None = None,
        end: float | None = None,
        batch: int = 10_000,
        *,
        service: str | None = None,
        latest: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Samples in time order, streamed (for export), optionally within [start, end) and
        of one service; with ``latest``, only the latest that many, newest first."""
        query = select(*(getattr(TelemetryRow, c) for c in STORED_COLUMNS)).where(
            TelemetryRow.app_id == app.id
        )
        stage_of = {s.name: stage.name for stage in app.structure.stages for s in stage.services}
        if service is not None:
            query = query.where(TelemetryRow.service == service)
        if start is not None:
            query = query.where(TelemetryRow.ts >= start)
        if end is not None:
            query = query.where(TelemetryRow.ts < end)
        with self.engine.connect() as connection:
            if latest is None:
                query = query.order_by(TelemetryRow.ts, TelemetryRow.id)
            else:
                query = query.order_by(TelemetryRow.ts.desc(), TelemetryRow.id.desc())
                query = query.limit(latest)
            result = connection.execution_options(yield_per=batch).execute(query)
            for row in result:
                yield {"stage": stage_of.get(row.service), **row._mapping}

    # -- actions --------------------------------------------------------------------------
    def add_actions(self, app: App, actions: Sequence[dict[str, Any]]) -> list[StoredAction]:
        """Record decisions; ``none`` decisions are recorded as applied (nothing to do)."""
        with self._tx() as tx:
            return _add_actions(tx, app, actions)

    def deliver_pending(
        self, app: App, services: Sequence[str], instance: str | None = None
    ) -> list[StoredAction]:
        """Pending actions aimed at ``services`` (at every instance, or at ``instance``),
        marked delivered: pull delivery in the reply to a telemetry batch."""
        with self._tx() as tx:
            return _deliver_pending(tx, app, self.clock(), services, instance)

    def mark_delivered(self, app: App, action_id: int) -> None:
        """A pushed action reached the effector (no-op if it moved on already)."""
        with self._tx() as tx:
            tx.execute(
                update(ActionRow)
                .where(
                    ActionRow.id == action_id,
                    ActionRow.app_id == app.id,
                    ActionRow.status == "pending",
                )
                .values(status="delivered", delivered_at=self.clock())
            )

    def finish_action(
        self, app: App, action_id: int, status: str, detail: str = ""
    ) -> StoredAction:
        """Record what the managed system did with an action: applied or failed."""
        if status not in ("applied", "failed"):
            raise StoreError(f"status must be 'applied' or 'failed', got {status!r}")
        with self._tx() as tx:
            row = tx.execute(
                select(ActionRow).where(ActionRow.id == action_id, ActionRow.app_id == app.id)
            ).first()
            if row is None:
                raise NotFound(f"{app.name} has no action {action_id}")
            if row.status in ("applied", "failed"):
                raise Conflict(f"action {action_id} is already {row.status}")
            tx.execute(
                update(ActionRow)
                .where(ActionRow.id == action_id)
                .values(status=status, finished_at=self.clock(), detail=detail[:2000])
            )
        return self.action(app, action_id)

    def action(self, app: App, action_id: int) -> StoredAction:
        with self.engine.connect() as connection:
            row = connection.execute(
                select(ActionRow).where(ActionRow.id == action_id, ActionRow.app_id == app.id)
            ).first()
        if row is None:
            raise NotFound(f"{app.name} has no action {action_id}")
        return _action(row)

    def actions(
        self,
        app: App,
        status: str | None = None,
        limit: int = 1000,
        start: float | None = None,
        end: float | None = None,
        *,
        service: str | None = None,
    ) -> list[StoredAction]:
        """The app's actions (or one service's), newest first, optionally by status and
        decided in [start, end)."""
        query = select(ActionRow).where(ActionRow.app_id == app.id)
        if service is not None:
            query = query.where(ActionRow.service == service)
        if status is not None:
            if status not in ACTION_STATUSES:
                raise StoreError(f"status must be one of {', '.join(ACTION_STATUSES)}")
            query = query.where(ActionRow.status == status)
        if start is not None:
            query = query.where(ActionRow.ts >= start)
        if end is not None:
            query = query.where(ActionRow.ts < end)
        with self.engine.connect() as connection:
            rows = connection.execute(query.order_by(ActionRow.id.desc()).limit(limit)).all()
        return [_action(r) for r in rows]

    def action_counts(self, app: App, service: str | None = None) -> dict[str, dict[str, int]]:
        """How many actions of each kind the app (or one service) got, by status:
        ``{kind: {status: n}}``."""
        query = select(ActionRow.kind, ActionRow.status, func.count()).where(
            ActionRow.app_id == app.id
        )
        if service is not None:
            query = query.where(ActionRow.service == service)
        with self.engine.connect() as connection:
            rows = connection.execute(query.group_by(ActionRow.kind, ActionRow.status)).all()
        counts: dict[str, dict[str, int]] = {}
        for kind, status, count in rows:
            counts.setdefault(kind, {})[status] = int(count)
        return counts

    # -- windows ------------------------------------------------------------------------
    def windows(
        self,
        app: App,
        start: float | None = None,
        end: float | None = None,
        limit: int = 1000,
        *,
        service: str | None = None,
    ) -> list[dict[str, Any]]:
        """Closed windows that ended in [start, end), of every service or of one, oldest
        first; the latest ``limit``."""
        query = select(*(getattr(WindowRow, c) for c in WINDOW_COLUMNS)).where(
            WindowRow.app_id == app.id
        )
        if service is not None:
            query = query.where(WindowRow.service == service)
        if start is not None:
            query = query.where(WindowRow.end >= start)
        if end is not None:
            query = query.where(WindowRow.end < end)
        with self.engine.connect() as connection:
            rows = connection.execute(query.order_by(WindowRow.id.desc()).limit(limit)).all()
        return [dict(r._mapping) for r in reversed(rows)]

    # -- model versions -----------------------------------------------------------------
    def put_version(
        self,
        app: App,
        service: str,
        model: str,
        version: int,
        *,
        fingerprint: Sequence[float] = (),
        metadata: dict[str, Any] | None = None,
        created: float | None = None,
    ) -> ModelVersion:
        """Record (or replace) what ``service`` says about one of its model versions; its
        ``metadata`` is the ``details`` it sent."""
        models = app.structure.service(service).models
        if model not in models:
            raise StoreError(
                f"{app.name}/{service} cannot serve {model!r}; it serves " + ", ".join(models)
            )
        if version < 1:
            raise StoreError(f"version must be 1 or more, got {version}")
        stored = ModelVersion(
            model,
            version,
            created=self.clock() if created is None else created,
            fingerprint=tuple(fingerprint),
            metadata=dict(metadata or {}),
            service=service,
        )
        values = {
            "app_id": app.id,
            "service": service,
            "model": model,
            "version": version,
            "created": stored.created,
            "fingerprint": list(fingerprint),
            "details": stored.metadata,
        }
        with self._tx() as tx:
            tx.execute(
                delete(ModelVersionRow).where(
                    ModelVersionRow.app_id == app.id,
                    ModelVersionRow.service == service,
                    ModelVersionRow.model == model,
                    ModelVersionRow.version == version,
                )
            )
            tx.execute(insert(ModelVersionRow).values(**values))
        return stored

    def versions(self, app: App, service: str | None = None) -> list[ModelVersion]:
        """Every version the app's services (or one service) described, by model and
        version."""
        query = select(ModelVersionRow).where(ModelVersionRow.app_id == app.id)
        if service is not None:
            query = query.where(ModelVersionRow.service == service)
        with self.engine.connect() as connection:
            rows = connection.execute(
                query.order_by(
                    ModelVersionRow.service, ModelVersionRow.model, ModelVersionRow.version
                )
            ).all()
        return [
            ModelVersion(
                r.model,
                r.version,
                created=r.created,
                fingerprint=tuple(r.fingerprint),
                metadata=dict(r.details),
                service=r.service,
            )
            for r in rows
        ]


class HarmonicaStore:
    """Harmonica's knowledge base (policies, telemetry, interventions), kept in the database
    instead of Harmonica's process memory."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def put_policy(self, policy_id: str, document: dict[str, Any]) -> None:
        with self.store._tx() as tx:
            tx.execute(delete(HarmonicaPolicyRow).where(HarmonicaPolicyRow.policy_id == policy_id))
            tx.execute(
                insert(HarmonicaPolicyRow).values(
                    policy_id=policy_id, document=document, created=self.store.clock()
                )
            )

    def policies(self) -> dict[str, dict[str, Any]]:
        with self.store.engine.connect() as connection:
            rows = connection.execute(
                select(HarmonicaPolicyRow).order_by(HarmonicaPolicyRow.created)
            )
            return {row.policy_id: row.document for row in rows}

    def record(self, policy_id: str, kind: str, body: dict[str, Any]) -> int:
        with self.store._tx() as tx:
            return int(
                tx.execute(
                    insert(HarmonicaRecordRow)
                    .values(policy_id=policy_id, kind=kind, ts=self.store.clock(), body=body)
                    .returning(HarmonicaRecordRow.id)
                ).scalar_one()
            )

    def update_record(self, record_id: int, body: dict[str, Any]) -> None:
        with self.store._tx() as tx:
            tx.execute(
                update(HarmonicaRecordRow)
                .where(HarmonicaRecordRow.id == record_id)
                .values(body=body)
            )

    def records(self, policy_id: str, kind: str) -> list[dict[str, Any]]:
        with self.store.engine.connect() as connection:
            rows = connection.execute(
                select(HarmonicaRecordRow.body)
                .where(HarmonicaRecordRow.policy_id == policy_id, HarmonicaRecordRow.kind == kind)
                .order_by(HarmonicaRecordRow.id)
            )
            return [row.body for row in rows]


_TELEMETRY_INSERT = "INSERT INTO telemetry (app_id, {columns}) VALUES ({markers})"


def _telemetry_params(app: App, rows: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The driver's parameters for ``rows``, following STORED_COLUMNS, app_id first, and
    without ``trace_id`` when no row has one: binding a NULL per row costs a tenth of a
    SQLite insert, and most batches of a one-stage app carry no trace. Built before the
    write transaction opens, so a big batch's Python work does not hold the write lock that
    every other batch waits on."""
    dumps = orjson.dumps
    tail = (
        (lambda row: (row["trace_id"],))
        if any(row["trace_id"] is not None for row in rows)
        else (lambda row: ())
    )
    return [
        (
            app.id,
            row["service"],
            row["instance"],
            row["model"],
            row["model_version"],
            row["ts"],
            row["latency_ms"],
            row["energy_j"],
            row["energy_source"],
            row["prediction"],
            row["target"],
            row["drift_value"],
            dumps(row["metrics"]).decode(),
            *tail(row),
        )
        for row in rows
    ]


def _insert_telemetry(tx: Any, params: list[tuple[Any, ...]]) -> int:
    """One ``executemany`` at the driver with tuples: half the time of SQLAlchemy's
    per-row dictionaries (15 → 7 ms per 1,000 rows on SQLite, 46 → 26 ms on PostgreSQL)."""
    if params:
        marker = "?" if tx.dialect.paramstyle == "qmark" else "%s"
        columns = STORED_COLUMNS[: len(params[0]) - 1]  # with or without trace_id
        statement = _TELEMETRY_INSERT.format(
            columns=", ".join(columns), markers=", ".join([marker] * (len(columns) + 1))
        )
        tx.exec_driver_sql(statement, params)
    return len(params)


# Built once: SQLAlchemy caches a statement's compiled form by its cache key, and a statement
# rebuilt with ``.values(**row)`` per call spends most of a small request computing that key.
_INSERT_ACTION = insert(ActionRow).returning(ActionRow.id)
_INSERT_WINDOW = insert(WindowRow)
_INSERT_BATCH_KEY = insert(BatchKeyRow)
WINDOW_COLUMNS = ("service", "start", "end", "model", "version", "count", "signals")


def _deliver_statement(to_service: Any) -> Any:
    return (
        update(ActionRow)
        .where(
            ActionRow.app_id == bindparam("app"),
            ActionRow.status == "pending",
            to_service,
            or_(ActionRow.instance.is_(None), ActionRow.instance == bindparam("to_instance")),
        )
        .values(status="delivered", delivered_at=bindparam("now"))
        .returning(*(getattr(ActionRow, name) for name in StoredAction.__dataclass_fields__))
    )


# A batch is one service's, nearly always: an expanding IN costs 20 µs per request to render.
_DELIVER_TO_ONE = _deliver_statement(ActionRow.service == bindparam("to_service"))
_DELIVER_TO_MANY = _deliver_statement(ActionRow.service.in_(bindparam("services", expanding=True)))


def _add_actions(tx: Any, app: App, actions: Sequence[dict[str, Any]]) -> list[StoredAction]:
    stored = []
    for action in actions:
        status = "applied" if action["kind"] == "none" else "pending"
        values = {**action, "app_id": app.id, "status": status, "detail": ""}
        action_id = tx.execute(_INSERT_ACTION, values).scalar_one()
        stored.append(
            StoredAction(id=int(action_id), delivered_at=None, finished_at=None, **values)
        )
    return stored


def _deliver_pending(
    tx: Any, app: App, now: float, services: Sequence[str], instance: str | None
) -> list[StoredAction]:
    """Mark the pending actions aimed at ``services`` (and at every instance or at
    ``instance``) delivered, in one statement; oldest first."""
    parameters = {"app": app.id, "now": now, "to_instance": instance}
    if len(services) == 1:
        rows = tx.execute(_DELIVER_TO_ONE, {**parameters, "to_service": services[0]}).all()
    else:
        rows = tx.execute(_DELIVER_TO_MANY, {**parameters, "services": list(services)}).all()
    return sorted((_action(r) for r in rows), key=lambda action: action.id)


def _app(connection: Connection, row: Any) -> App:
    """An app with its structure, read from its stages and services (its instances, which
    come and go, are read apart: `Store.instances`)."""
    stages = connection.execute(
        select(StageRow).where(StageRow.app_id == row.id).order_by(StageRow.position)
    ).all()
    services = connection.execute(
        select(ServiceRow).where(ServiceRow.app_id == row.id).order_by(ServiceRow.position)
    ).all()
    structure = Application.model_validate(
        {
            "name": row.name,
            "owner": row.owner,
            "effector_url": row.effector_url,
            "stages": [
                {
                    "name": stage.name,
                    "after": list(stage.after),
                    "services": [
                        {
                            "name": service.name,
                            "models": list(service.models),
                            "effector_url": service.effector_url,
                        }
                        for service in services
                        if service.stage_id == stage.id
                    ],
                }
                for stage in stages
            ],
        }
    )
    return App(
        id=row.id,
        name=row.name,
        owner=row.owner,
        effector_url=row.effector_url,
        created=row.created,
        structure=structure,
        stage_ids={stage.name: stage.id for stage in stages},
        service_ids={service.name: service.id for service in services},
    )


def _action(row: Any, **override: Any) -> StoredAction:
    fields = {name: getattr(row, name) for name in StoredAction.__dataclass_fields__}
    fields.update(override)
    return StoredAction(**fields)
