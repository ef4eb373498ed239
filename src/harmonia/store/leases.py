"""Replicas of the server over one PostgreSQL database: the lease that makes one replica the
owner of each live loop, the inbox through which the others hand it their telemetry, and
what the replicas tell each other (their event-stream subscriptions, oversized events).

A lease is a row per (app, service): its owner (a replica's id), a fencing ``token`` that
grows by one at every takeover, and ``expires_at`` (the database's clock, so that replicas'
clocks need not agree). The owner renews it; once it has expired, any replica may take it
over, and the token it gets is the previous one plus one. Every write of the owner's
decisions (`LeasesMixin.record_decisions`) ends by locking the lease row and checking that
it still holds that token, in the same transaction: a replica whose lease was taken over
can no longer write, whatever its clock says, and a takeover waits for a write about to
commit. Lease transactions bound their lock waits and their idle time, so that a replica
paused in the middle of one (or cut off) holds no lease row for long.

Telemetry that reaches a replica that does not own the loop is stored by it all the same
(`Store.ingest`), then put in the loop's inbox (`enqueue`) for the owner, which consumes it in
the transaction that records what it decided (`record_decisions`'s ``consumed``): each batch
feeds the loop once, on whichever replica owns it when it is taken from the inbox.

PostgreSQL only (its tables come with migration 0014 there); on SQLite one process owns
every loop and none of this is used.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, bindparam, text, update
from sqlalchemy.dialects.postgresql import ARRAY, BIGINT, INTEGER, VARCHAR

from harmonia.store.actions import StoredAction, _add_actions, _deliver_pending
from harmonia.store.apps import App
from harmonia.store.base import StoreBase
from harmonia.store.errors import StoreError
from harmonia.store.tables import BatchKeyRow
from harmonia.store.windows import _INSERT_WINDOW

#: the channel of every notification between replicas
CHANNEL = "harmonia"
#: PostgreSQL refuses NOTIFY payloads from 8,000 bytes; larger ones go through a table
MAX_NOTIFY_BYTES = 7_900
#: a replica that stops in the middle of a lease's transaction (paused, cut off) holds its
#: locks: the database ends its session after this long idle in the transaction, so that a
#: takeover waiting for the lease row goes ahead
LEASE_IDLE_S = 5
#: how long a statement of a lease's transaction waits for a lock before it fails (so that
#: one never holds the lease row while waiting on another transaction for long)
LEASE_LOCK_TIMEOUT_S = 2
#: how long taking a lease waits for a lock before giving up until the next look
TAKE_LOCK_TIMEOUT_S = 1
#: the database's clock, in seconds since the epoch
_NOW = "CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION)"

_TAKE = text(
    f"""
    INSERT INTO leases AS l (app_id, service, owner, token, expires_at, acquired_at)
    SELECT k.app_id, k.service, :owner, 1, {_NOW} + :seconds, {_NOW}
    FROM unnest(:apps, :services) AS k(app_id, service)
    ON CONFLICT (app_id, service) DO UPDATE
        SET owner = excluded.owner, token = l.token + 1, expires_at = excluded.expires_at,
            acquired_at = excluded.acquired_at
        WHERE l.expires_at < excluded.acquired_at OR l.owner = excluded.owner
    RETURNING l.app_id, l.service, l.token, l.acquired_at
    """
).bindparams(bindparam("apps", type_=ARRAY(INTEGER)), bindparam("services", type_=ARRAY(VARCHAR)))
_RENEW = text(
    f"""
    UPDATE leases AS l SET expires_at = {_NOW} + :seconds
    FROM unnest(:apps, :services, :tokens) AS k(app_id, service, token)
    WHERE l.app_id = k.app_id AND l.service = k.service AND l.token = k.token
        AND l.owner = :owner
    RETURNING l.app_id, l.service
    """
).bindparams(
    bindparam("apps", type_=ARRAY(INTEGER)),
    bindparam("services", type_=ARRAY(VARCHAR)),
    bindparam("tokens", type_=ARRAY(BIGINT)),
)
_RELEASE = text(
    f"""
    UPDATE leases AS l SET expires_at = {_NOW} - 1
    FROM unnest(:apps, :services, :tokens) AS k(app_id, service, token)
    WHERE l.app_id = k.app_id AND l.service = k.service AND l.token = k.token
        AND l.owner = :owner
    """
).bindparams(
    bindparam("apps", type_=ARRAY(INTEGER)),
    bindparam("services", type_=ARRAY(VARCHAR)),
    bindparam("tokens", type_=ARRAY(BIGINT)),
)
#: the lease of an app's checks, held beside its loops' leases under this key in place of a
#: service (no service name starts with ``~``): the replica holding it is the one that
#: checks the app's contract, so that a violation is recorded once, not once a replica, and
#: runs its observers over every replica's samples (the others hand theirs over through the
#: inbox under this key), so that each run is stored once and sees the whole stream
CONTRACT_LEASE = "~contract"
#: the loops with a policy, and the apps with a contract or observers, whose lease nobody
#: holds: none yet, expired, or this replica's from before it restarted (taken over at
#: once, the token moving on)
_FREE = text(
    f"""
    SELECT p.app_id, a.name, p.service
    FROM (
        SELECT DISTINCT app_id, service FROM policies
        UNION SELECT DISTINCT app_id, '{CONTRACT_LEASE}' FROM contracts
        UNION SELECT DISTINCT app_id, '{CONTRACT_LEASE}' FROM observer_configs
    ) AS p
    JOIN apps AS a ON a.id = p.app_id
    LEFT JOIN leases AS l ON l.app_id = p.app_id AND l.service = p.service
    WHERE l.app_id IS NULL OR l.expires_at < {_NOW} OR l.owner = :owner
    ORDER BY p.app_id, p.service
    """
)
_FENCE = text(
    "SELECT owner, token FROM leases WHERE app_id = :app AND service = :service FOR UPDATE"
)
_CONSUME = text("DELETE FROM loop_inbox WHERE id = ANY(:ids)").bindparams(
    bindparam("ids", type_=ARRAY(BIGINT))
)
_NOTIFY = text(f"SELECT pg_notify('{CHANNEL}', :payload)")


class LeaseLost(StoreError):
    """This replica no longer holds the lease it wrote under: another took the loop over."""


@dataclass(frozen=True)
class Lease:
    """Who owns a loop, under which fencing token, until when (the database's clock)."""

    app_id: int
    app: str
    service: str
    owner: str
    token: int
    expires_at: float
    acquired_at: float


@dataclass(frozen=True)
class Taken:
    """A lease this replica has just taken: the loop's key and its fencing token."""

    app_id: int
    app: str
    service: str
    token: int
    acquired_at: float


@dataclass(frozen=True)
class Inboxed:
    """A batch a replica that did not own the loop stored and handed on."""

    id: int
    rows: list[dict[str, Any]]


class LeasesMixin(StoreBase):
    """Leases on the live loops, their inboxes, and the replicas' notifications."""

    @property
    def replicable(self) -> bool:
        """Whether several servers can share this database (PostgreSQL)."""
        return self.engine.dialect.name == "postgresql"

    # -- leases ---------------------------------------------------------------------------

    def free_loops(self, owner: str) -> list[tuple[int, str, str]]:
        """(app id, app name, service) of every loop with a policy that no live replica
        owns: no lease yet, an expired one, or one that ``owner`` held before a restart;
        and of every app with a contract or observers whose checks nobody owns (service
        `CONTRACT_LEASE`)."""
        with self.engine.connect() as connection:
            rows = connection.execute(_FREE, {"owner": owner}).all()
        return [(int(r.app_id), str(r.name), str(r.service)) for r in rows]

    def take_leases(
        self, owner: str, loops: Sequence[tuple[int, str, str]], seconds: float
    ) -> list[Taken]:
        """Take the leases of ``loops`` (app id, app name, service) that are free (or
        ``owner``'s from before a restart) for ``seconds``; those taken, each with its new
        token. Two replicas taking the same lease at once: one gets it."""
        if not loops:
            return []
        names = {(app_id, service): name for app_id, name, service in loops}
        parameters = {
            "owner": owner,
            "seconds": seconds,
            "apps": [app_id for app_id, _, _ in loops],
            "services": [service for _, _, service in loops],
        }
        with self.engine.begin() as tx:
            _bounded(tx, TAKE_LOCK_TIMEOUT_S)
            rows = tx.execute(_TAKE, parameters).all()
        return [
            Taken(
                int(r.app_id),
                names[int(r.app_id), r.service],
                str(r.service),
                int(r.token),
                float(r.acquired_at),
            )
            for r in rows
        ]

    def renew_leases(
        self, owner: str, held: Iterable[tuple[int, str, int]], seconds: float
    ) -> set[tuple[int, str]]:
        """Extend by ``seconds`` the leases ``owner`` holds, given as (app id, service,
        token); returns those still held (a lease taken over meanwhile is not)."""
        held = list(held)
        if not held:
            return set()
        parameters = {
            "owner": owner,
            "seconds": seconds,
            "apps": [h[0] for h in held],
            "services": [h[1] for h in held],
            "tokens": [h[2] for h in held],
        }
        with self.engine.begin() as tx:
            _bounded(tx)
            rows = tx.execute(_RENEW, parameters).all()
        return {(int(r.app_id), str(r.service)) for r in rows}

    def release_leases(self, owner: str, held: Iterable[tuple[int, str, int]]) -> None:
        """Let the leases go at once (a replica stopping cleanly): another replica takes them
        over at its next look instead of waiting for them to expire."""
        held = list(held)
        if not held:
            return
        parameters = {
            "owner": owner,
            "apps": [h[0] for h in held],
            "services": [h[1] for h in held],
            "tokens": [h[2] for h in held],
        }
        with self.engine.begin() as tx:
            _bounded(tx)
            tx.execute(_RELEASE, parameters)

    def leases(self, app: App | None = None) -> list[Lease]:
        """The loops' leases (of one app, or all), by app and service."""
        where = "" if app is None else "WHERE l.app_id = :app"
        query = text(
            "SELECT l.app_id, a.name, l.service, l.owner, l.token, l.expires_at, "
            f"l.acquired_at FROM leases AS l JOIN apps AS a ON a.id = l.app_id {where} "
            "ORDER BY a.name, l.service"
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query, {} if app is None else {"app": app.id}).all()
        return [
            Lease(
                int(r.app_id),
                str(r.name),
                str(r.service),
                str(r.owner),
                int(r.token),
                float(r.expires_at),
                float(r.acquired_at),
            )
            for r in rows
        ]

    def database_clock(self) -> float:
        """The database's clock (seconds since the epoch), which leases expire by: whether
        one has expired is told by it, not by a replica's clock."""
        with self.engine.connect() as connection:
            return float(connection.scalar(text(f"SELECT {_NOW}")) or 0.0)

    # -- the owner's writes, fenced --------------------------------------------------------

    def record_decisions(
        self,
        app: App,
        service: str,
        owner: str,
        token: int,
        *,
        windows: Sequence[dict[str, Any]] = (),
        actions: Sequence[dict[str, Any]] = (),
        consumed: Sequence[int] = (),
        deliver_to: str | None = None,
        reply: tuple[str, dict[str, Any]] | None = None,
    ) -> tuple[list[StoredAction], list[StoredAction]]:
        """What the owner of ``service``'s loop decided, in one transaction that ends by
        checking that ``owner`` still holds the lease under ``token`` (else `LeaseLost`, and
        nothing is written): the ``windows`` it closed, the ``actions`` it decided, the inbox
        batches it ``consumed`` (taken out of the inbox). With ``deliver_to`` (an instance),
        the service's pending actions are marked delivered for a pull reply; with ``reply``
        (a batch's idempotency key and the reply it got so far), that reply, kept under the
        key, gets them too. Returns (actions recorded, actions delivered).

        The check locks the lease row until the commit that follows it: a takeover either
        came first (and the check sees its token) or waits for the commit. Checking last
        holds that lock for one statement, never while waiting for another lock."""
        with self._tx() as tx:
            _bounded(tx)
            if consumed:
                gone = tx.execute(_CONSUME, {"ids": list(consumed)}).rowcount
                if gone != len(consumed):  # another replica took them: it owns the loop
                    raise LeaseLost(
                        f"the inbox of {app.name}/{service} was consumed by another replica"
                    )
            if windows:
                tx.execute(_INSERT_WINDOW, [{**w, "app_id": app.id} for w in windows])
            stored = _add_actions(tx, app, actions)
            delivered: list[StoredAction] = []
            if deliver_to is not None:
                delivered = _deliver_pending(tx, app, self.clock(), [service], deliver_to)
            if reply is not None and delivered:
                key, kept = reply
                kept = {**kept, "actions": [*kept["actions"], *(a.message() for a in delivered)]}
                tx.execute(
                    update(BatchKeyRow)
                    .where(BatchKeyRow.app_id == app.id, BatchKeyRow.key == key)
                    .values(reply=kept)
                )
            _check_fence(tx, app, service, owner, token)
        return stored, delivered

    # -- the inbox ----------------------------------------------------------------------

    def enqueue(self, app: App, service: str, rows: Sequence[dict[str, Any]]) -> None:
        """Hand a batch stored by a replica that does not own ``service``'s loop to the
        owner, and wake it (a notification, sent at commit)."""
        notice = orjson.dumps({"k": "inbox", "a": app.name, "s": service}).decode()
        with self._tx() as tx:
            tx.execute(
                text(
                    "INSERT INTO loop_inbox (app_id, service, created, samples) "
                    "VALUES (:app, :service, :created, :samples)"
                ),
                {
                    "app": app.id,
                    "service": service,
                    "created": self.clock(),
                    "samples": orjson.dumps(rows),
                },
            )
            tx.execute(_NOTIFY, {"payload": notice})

    def inbox(self, app: App, service: str, limit: int = 50) -> list[Inboxed]:
        """The oldest batches waiting in ``service``'s inbox (left there until the owner
        records that it consumed them)."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT id, samples FROM loop_inbox WHERE app_id = :app AND "
                    "service = :service ORDER BY id LIMIT :limit"
                ),
                {"app": app.id, "service": service, "limit": limit},
            ).all()
        return [Inboxed(int(r.id), orjson.loads(r.samples)) for r in rows]

    def inbox_keys(self) -> set[tuple[int, str]]:
        """(app id, service) of every inbox holding batches."""
        with self.engine.connect() as connection:
            rows = connection.execute(text("SELECT DISTINCT app_id, service FROM loop_inbox")).all()
        return {(int(r.app_id), str(r.service)) for r in rows}

    def inbox_size(self, app: App | None = None) -> int:
        """Batches waiting in the inboxes (of one app, or all)."""
        where = "" if app is None else " WHERE app_id = :app"
        with self.engine.connect() as connection:
            return int(
                connection.scalar(
                    text(f"SELECT count(*) FROM loop_inbox{where}"),
                    {} if app is None else {"app": app.id},
                )
                or 0
            )

    # -- between replicas ---------------------------------------------------------------

    def heartbeat(
        self, replica: str, subscriptions: dict[str, bool], *, within: float
    ) -> dict[str, dict[str, bool]]:
        """Say that ``replica`` is alive and which apps' events its subscribers want (app:
        whether raw telemetry too); returns the other replicas' seen ``within`` seconds."""
        with self.engine.begin() as tx:
            tx.execute(
                text(
                    "INSERT INTO replicas AS r (id, started, seen, subscriptions) "
                    f"VALUES (:id, {_NOW}, {_NOW}, CAST(:subs AS JSON)) ON CONFLICT (id) DO UPDATE "
                    "SET seen = excluded.seen, subscriptions = excluded.subscriptions"
                ),
                {"id": replica, "subs": orjson.dumps(subscriptions).decode()},
            )
            rows = tx.execute(
                text(
                    f"SELECT id, subscriptions FROM replicas WHERE id <> :id AND seen > {_NOW} "
                    "- :within"
                ),
                {"id": replica, "within": within},
            ).all()
        return {str(r.id): _subscriptions(r.subscriptions) for r in rows}

    def replicas(self, within: float = 10.0) -> list[tuple[str, float, float]]:
        """(id, started, last seen) of the replicas seen in the last ``within`` seconds."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                text(
                    f"SELECT id, started, seen FROM replicas WHERE seen > {_NOW} - :within "
                    "ORDER BY id"
                ),
                {"within": within},
            ).all()
        return [(str(r.id), float(r.started), float(r.seen)) for r in rows]

    def notify(self, payloads: Sequence[bytes]) -> None:
        """Send notifications to every replica, in one transaction; a payload too large
        for NOTIFY is kept in ``replica_events`` and its id sent instead."""
        with self.engine.begin() as tx:
            small = []
            for payload in payloads:
                if len(payload) <= MAX_NOTIFY_BYTES:
                    small.append({"payload": payload.decode()})
                    continue
                event_id = tx.scalar(
                    text(
                        f"INSERT INTO replica_events (created, payload) VALUES ({_NOW}, "
                        ":payload) RETURNING id"
                    ),
                    {"payload": payload.decode()},
                )
                small.append({"payload": orjson.dumps({"k": "stored", "id": event_id}).decode()})
            if small:
                tx.execute(_NOTIFY, small)

    def stored_notification(self, event_id: int) -> bytes | None:
        with self.engine.connect() as connection:
            payload = connection.scalar(
                text("SELECT payload FROM replica_events WHERE id = :id"), {"id": event_id}
            )
        return None if payload is None else str(payload).encode()

    def purge_notifications(self, older_than: float) -> None:
        """Forget the oversized notifications sent more than ``older_than`` seconds ago, and
        the replicas not seen for as long."""
        with self.engine.begin() as tx:
            tx.execute(
                text(f"DELETE FROM replica_events WHERE created < {_NOW} - :age"),
                {"age": older_than},
            )
            tx.execute(
                text(f"DELETE FROM replicas WHERE seen < {_NOW} - :age"), {"age": older_than}
            )


def _bounded(tx: Connection, lock_timeout_s: float = LEASE_LOCK_TIMEOUT_S) -> None:
    """Bound what a lease's transaction may hold up: its statements' waits for locks, and
    its time idle (its replica paused or gone silent)."""
    tx.exec_driver_sql(f"SET LOCAL lock_timeout = '{lock_timeout_s}s'")
    tx.exec_driver_sql(f"SET LOCAL idle_in_transaction_session_timeout = '{LEASE_IDLE_S}s'")


def _check_fence(tx: Connection, app: App, service: str, owner: str, token: int) -> None:
    """Lock the lease row of ``service``'s loop until the transaction ends and check that
    ``owner`` holds it under ``token``: a takeover waits for this transaction, and a write
    after a takeover is refused."""
    row = tx.execute(_FENCE, {"app": app.id, "service": service}).first()
    if row is None or row.owner != owner or int(row.token) != token:
        holder = "nobody" if row is None else f"{row.owner} (token {row.token})"
        raise LeaseLost(
            f"{owner} no longer owns the loop of {app.name}/{service} under token {token}: "
            f"{holder} does"
        )


def _subscriptions(value: Any) -> dict[str, bool]:
    data = orjson.loads(value) if isinstance(value, str | bytes) else value
    return {str(k): bool(v) for k, v in dict(data or {}).items()}
