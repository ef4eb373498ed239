"""Model versions: what each service says about the versions of the models it serves
(fingerprint, details)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, insert, select

from harmonia.core.versions import ModelVersion
from harmonia.store.apps import App
from harmonia.store.base import StoreBase
from harmonia.store.errors import StoreError
from harmonia.store.tables import ModelVersionRow


class VersionsMixin(StoreBase):
    """Model versions, recorded and listed."""

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
