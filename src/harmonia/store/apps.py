"""Applications: registration with their stages and services, the instances that say they
run and the nodes they run on, and the probe tokens that authenticate them."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, insert, select, update

from harmonia.core.application import Application
from harmonia.store.audit import add_audit
from harmonia.store.base import StoreBase
from harmonia.store.errors import Conflict, NotFound, StoreError
from harmonia.store.tables import AppRow, DomainRow, InstanceRow, NodeRow, ServiceRow, StageRow

NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


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
    #: the domain the app belongs to (``default`` unless registered in another)
    domain: str = "default"
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


def same_secret(given: str, known: str) -> bool:
    """Whether ``given`` is ``known``, in constant time; any text may be given (a header
    decoded as Latin-1, a query string's UTF-8), where `secrets.compare_digest` refuses
    non-ASCII strings with a TypeError."""
    return secrets.compare_digest(given.encode(), known.encode())


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class AppsMixin(StoreBase):
    """Applications, their instances and nodes."""

    def create_app(
        self, structure: Application, *, domain: str = "default", by: str | None = None
    ) -> tuple[App, str]:
        """Register an application with its stages and services in ``domain``; returns it and
        its probe token (shown only once). With ``by`` (the principal that asked), the
        registration is written to the audit log in the same transaction."""
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
            domain_id = tx.scalar(select(DomainRow.id).where(DomainRow.name == domain))
            if domain_id is None:
                raise NotFound(f"no domain named {domain[:64]!r}")
            app_id = tx.execute(
                insert(AppRow)
                .values(
                    name=structure.name,
                    owner=structure.owner,
                    token_hash=hash_token(token),
                    effector_url=structure.effector_url,
                    created=now,
                    domain_id=domain_id,
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
            if by is not None:
                resource = f"app:{structure.name}"
                add_audit(tx, now, by, "app.register", resource, domain=domain)
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
    domain = None
    if row.domain_id is not None:
        domain = connection.scalar(select(DomainRow.name).where(DomainRow.id == row.domain_id))
    return App(
        id=row.id,
        name=row.name,
        owner=row.owner,
        effector_url=row.effector_url,
        created=row.created,
        structure=structure,
        stage_ids={stage.name: stage.id for stage in stages},
        service_ids={service.name: service.id for service in services},
        domain=domain or "default",
    )
