"""The store: one object over one database (SQLite by default, PostgreSQL for scale),
composed of one mixin per resource (each in its module) over `StoreBase`.

`Store.ingest` lives here because it writes four resources (telemetry, windows, actions,
batch keys) in one transaction, one commit per request. Reads return plain dataclasses,
never live ORM objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.exc import IntegrityError

from harmonia.store.actions import ActionsMixin, StoredAction, _add_actions, _deliver_pending
from harmonia.store.apps import App, AppsMixin
from harmonia.store.audit import AuditMixin
from harmonia.store.batches import BatchKeysMixin
from harmonia.store.catalog import CatalogMixin
from harmonia.store.contracts import ContractsMixin
from harmonia.store.domains import DomainsMixin
from harmonia.store.energy import NodeEnergyMixin
from harmonia.store.errors import Conflict
from harmonia.store.infrastructure import InfrastructureMixin
from harmonia.store.leases import LeasesMixin
from harmonia.store.observations import ObservationsMixin
from harmonia.store.policies import PoliciesMixin
from harmonia.store.telemetry import TelemetryMixin, _insert_telemetry, _telemetry_params
from harmonia.store.versions import VersionsMixin
from harmonia.store.windows import _INSERT_WINDOW, WindowsMixin


class Store(
    AppsMixin,
    PoliciesMixin,
    TelemetryMixin,
    ActionsMixin,
    WindowsMixin,
    VersionsMixin,
    BatchKeysMixin,
    ContractsMixin,
    InfrastructureMixin,
    ObservationsMixin,
    NodeEnergyMixin,
    DomainsMixin,
    AuditMixin,
    CatalogMixin,
    LeasesMixin,
):
    """Applications, policies, telemetry and actions in one database."""

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
        self._prepare_telemetry(rows)  # the partitions of its days, in their own transaction
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
