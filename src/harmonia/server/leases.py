"""This server as one replica among several over one PostgreSQL database.

Every replica takes telemetry, policies and API calls. Each managed service's live loop is
owned by one replica at a time, through a lease with a fencing token
(`harmonia.store.leases`):

- the lease keeper (a thread) renews this replica's leases every third of the lease time,
  and twice a second takes the leases nobody holds: loops with a policy but no lease yet,
  and those whose owner stopped renewing (it died: the lease expired). A replica that
  takes a loop over builds it from the store (`Server.loop`: the versions described, the
  model serving, the action still on its way) and pushes again what was pending for push
  services.
- the owner decides on the batches it receives as a single server does, and records the
  windows and actions in a transaction fenced by its token: a replica that lost its lease
  has its decisions refused (`LeaseLost`), drops the loop and hands the batch on.
- a replica that does not own a loop stores the batch and puts it in the loop's inbox; the
  owner's feeder (a thread, woken by a notification) feeds it to the loop and records what
  it decided in the transaction that takes it out of the inbox. Pull replies carry the
  pending actions from the store, whichever replica answers.
- events reach the event-stream subscribers of every replica: a replica sends an event by
  NOTIFY to the others when one of them has subscribers for its app (each says which apps
  its subscribers watch in its heartbeat), and always for actions and observations, which
  the owner's loop needs (a failed action may be decided again; observations feed the
  policy). A listener thread (one connection of its own, LISTEN) publishes the others'
  events to the subscribers here and wakes the feeder.

Contract checks are leased too: an app with a contract has a lease of its own beside its
loops' (service `CONTRACT_LEASE`), taken and kept by the same keeper, and only its holder
checks the app's contract (`ContractKeeper`), so that an SLO that becomes violated is recorded
once. The other replicas count their samples towards the contract's windows as before and,
when one closes, ask the holder to check (a ``check`` notification).

On SQLite there is one process and none of this runs (`Server.replicas` is None).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from harmonia.server.observe import Broadcaster
from harmonia.store import App
from harmonia.store.leases import CHANNEL, CONTRACT_LEASE, Inboxed, LeaseLost, Taken

if TYPE_CHECKING:
    from harmonia.server.service import Server

logger = logging.getLogger("harmonia.server.replicas")

#: how long a lease lasts without renewal (seconds): a dead owner's loops are taken over
#: this long after its last renewal, plus at most `LOOK_EVERY_S`
LEASE_SECONDS = 3.0
#: how often a replica looks for loops nobody owns, and says it is alive
LOOK_EVERY_S = 0.5
#: how often the feeder looks at its inboxes when no notification woke it
FEED_EVERY_S = 1.0
#: inbox batches fed to a loop per transaction
INBOX_BATCHES = 50
#: how long a service known to have no policy is believed to have none (a notification
#: says so at once when a policy is applied; this covers a notification lost)
NO_POLICY_S = 5.0
#: events relayed to the other replicas whatever their subscribers: their loops need them
ALWAYS_RELAYED = frozenset({"action", "observation"})
#: events waiting to be sent, at most (the oldest are dropped beyond: the stream is live)
MAX_QUEUED_EVENTS = 10_000
#: oversized notifications and silent replicas are forgotten after this long (seconds)
PURGE_AFTER_S = 300.0


@dataclass(frozen=True)
class ReplicaOptions:
    """How this server takes part among replicas: its ``id`` (unique among the replicas,
    stable across its restarts, so that a restarted replica takes its loops back at once)
    and how long a lease lasts without renewal (0: no leases, a single server)."""

    id: str
    lease_seconds: float = LEASE_SECONDS


@dataclass(frozen=True)
class Held:
    """A lease this replica holds: its app's id and its fencing token."""

    app_id: int
    token: int


class ReplicatedEvents(Broadcaster):
    """The event stream of one replica, whose events the other replicas' subscribers see
    too (through `Replicas.relay`)."""

    def __init__(self, replicas: Replicas, *, per_app: int, total: int) -> None:
        super().__init__(per_app=per_app, total=total)
        self._replicas = replicas

    def publish(self, app: str, event: str, data: dict[str, Any], *, raw: bool = False) -> None:
        super().publish(app, event, data, raw=raw)
        self._replicas.relay(app, event, data, raw)

    def publish_here(self, app: str, event: str, data: dict[str, Any], *, raw: bool) -> None:
        """Publish another replica's event to the subscribers of this one only."""
        super().publish(app, event, data, raw=raw)

    def watched(self) -> dict[str, bool]:
        """The apps this replica's subscribers watch: app → whether one wants raw samples."""
        with self._lock:
            return {
                app: any(s.raw for s in subs) for app, subs in self._subscribers.items() if subs
            }


class Replicas:
    """This server's part among the replicas: the leases it holds on live loops, the
    threads that keep them (keeper), feed the owned loops from their inboxes (feeder),
    listen to the other replicas (listener) and send them events (sender)."""

    def __init__(self, server: Server, options: ReplicaOptions) -> None:
        if options.lease_seconds <= 0:
            raise ValueError("a lease lasts more than 0 seconds")
        self.server = server
        self.store = server.store
        self.id = options.id
        self.lease_seconds = options.lease_seconds
        self.renew_every = options.lease_seconds / 3
        self.look_every = min(LOOK_EVERY_S, self.renew_every)
        guards = server.guards
        self.events = ReplicatedEvents(
            self, per_app=guards.max_subscribers_per_app, total=guards.max_subscribers
        )
        self._lock = threading.Lock()
        #: the leases held, by (app, service)
        self._held: dict[tuple[str, str], Held] = {}
        #: whether a service has a policy (so a loop, owned somewhere), and since when known
        self._policies: dict[tuple[str, str], tuple[bool, float]] = {}
        #: apps whose events other replicas' subscribers watch: app → raw samples too
        self._remote: dict[str, bool] = {}
        self._queued: collections.deque[bytes] = collections.deque(maxlen=MAX_QUEUED_EVENTS)
        self._stop = threading.Event()
        self._feed = threading.Event()
        self._send = threading.Event()
        self._listening = threading.Event()
        self._threads: list[threading.Thread] = []
        self._renewed = time.monotonic()

    # -- what the server asks -------------------------------------------------------------

    def token(self, app: str, service: str) -> int | None:
        """The fencing token under which this replica owns the loop; None if it does not."""
        held = self._held.get((app, service))
        return None if held is None else held.token

    def held(self) -> dict[tuple[str, str], Held]:
        with self._lock:
            return dict(self._held)

    def owns_contract(self, app: str) -> bool:
        """Whether this replica holds the lease of ``app``'s contract checks (only its
        holder checks the contract and records violations)."""
        return (app, CONTRACT_LEASE) in self._held

    def contract_changed(self, app: App) -> None:
        """A contract was applied here: the other replicas forget the one they had read
        (the holder of the checks' lease reads the new one), and this replica takes the
        lease if nobody holds it yet (the keeper's next look would, within half a
        second)."""
        self._queue({"k": "contract", "a": app.name})
        self._take_checks(app)

    def observers_changed(self, app: App) -> None:
        """Observers were configured here: the other replicas read them again (the holder
        of the checks' lease runs them from its next batch on), and this replica takes the
        lease if nobody holds it yet."""
        self._queue({"k": "observers", "a": app.name})
        self._take_checks(app)

    def hand_to_observers(self, app: App, rows: list[dict[str, Any]]) -> None:
        """A batch stored here, for the observers that the holder of the app's checks'
        lease runs: through the inbox, under the lease's key."""
        self.store.enqueue(app, CONTRACT_LEASE, rows)

    def _take_checks(self, app: App) -> None:
        if (app.name, CONTRACT_LEASE) not in self._held:
            try:
                taken = self.store.take_leases(
                    self.id, [(app.id, app.name, CONTRACT_LEASE)], self.lease_seconds
                )
            except Exception:  # the keeper tries again
                logger.warning("taking the contract checks of %s failed", app.name, exc_info=True)
                return
            self._took(taken)

    def ask_check(self, app: App) -> None:
        """A window of ``app``'s contract closed here, but another replica checks it: ask
        that one (the holder queues a check; one that holds nothing ignores it)."""
        self._queue({"k": "check", "a": app.name})

    def view(self) -> dict[str, Any]:
        """The replicas and their leases as the database has them, for ``GET /replicas``:
        each replica seen lately or holding a lease, its leases, and which of them this
        replica holds (by its own reckoning: a lease it believes it holds under the token
        the database shows)."""
        within = self.lease_seconds + self.look_every
        now = self.store.database_clock()
        alive = {rid: (started, seen) for rid, started, seen in self.store.replicas(within)}
        held = self.held()
        leases: dict[str, list[dict[str, Any]]] = {rid: [] for rid in alive}
        for lease in self.store.leases():
            mine = held.get((lease.app, lease.service))
            leases.setdefault(lease.owner, []).append(
                {
                    "app": lease.app,
                    "service": None if lease.service == CONTRACT_LEASE else lease.service,
                    "kind": "contract" if lease.service == CONTRACT_LEASE else "loop",
                    "token": lease.token,
                    "acquired_at": lease.acquired_at,
                    "expires_at": lease.expires_at,
                    "expired": lease.expires_at < now,
                    "here": lease.owner == self.id
                    and mine is not None
                    and mine.token == lease.token,
                }
            )
        return {
            "replicas": True,
            "this": self.id,
            "lease_seconds": self.lease_seconds,
            "now": now,
            "items": [
                {
                    "id": rid,
                    "this": rid == self.id,
                    "alive": rid in alive,
                    "started": alive[rid][0] if rid in alive else None,
                    "seen": alive[rid][1] if rid in alive else None,
                    "leases": owned,
                }
                for rid, owned in sorted(leases.items())
            ],
        }

    def has_policy(self, app: App, service: str) -> bool:
        """Whether ``service`` has a policy, hence a loop (owned here or elsewhere) that
        telemetry must reach; remembered (a service without one is asked again after
        `NO_POLICY_S`, or at once when a replica says a policy was applied)."""
        key = (app.name, service)
        now = time.monotonic()
        known = self._policies.get(key)
        if known is not None and (known[0] or now - known[1] < NO_POLICY_S):
            return known[0]
        found = self.store.policy(app, service) is not None
        self._policies[key] = (found, now)
        return found

    def lost(self, app: str, service: str, reason: object) -> None:
        """This replica no longer owns the loop (its write was fenced off): drop it."""
        with self._lock:
            gone = self._held.pop((app, service), None)
        if service == CONTRACT_LEASE:
            if gone is not None:
                logger.warning(
                    "replica %s lost the contract checks of %s: %s", self.id, app, reason
                )
            self.server.contracts.forget(app)
            return
        if gone is not None:
            logger.warning("replica %s lost the loop of %s/%s: %s", self.id, app, service, reason)
        self.server.drop_loop(app, service)

    def policy_changed(self, app: App, service: str) -> None:
        """A policy was applied here: the other replicas hear of it (the owner puts it in
        force), and this replica takes the loop if nobody owns it yet."""
        self._policies[(app.name, service)] = (True, time.monotonic())
        self._queue({"k": "policy", "a": app.name, "s": service})
        if (app.name, service) not in self._held:
            try:
                taken = self.store.take_leases(
                    self.id, [(app.id, app.name, service)], self.lease_seconds
                )
            except Exception:  # the keeper tries again
                logger.warning("taking the loop of %s/%s failed", app.name, service, exc_info=True)
                return
            self._took(taken)

    def version_described(self, app: App, service: str, model: str, version: int) -> None:
        """A version was described here: the owner of the loop hears of it."""
        self._queue({"k": "version", "a": app.name, "s": service, "m": model, "v": version})

    def relay(self, app: str, event: str, data: dict[str, Any], raw: bool) -> None:
        """Send an event to the other replicas if a subscriber there watches ``app`` (or if
        their loops need it: actions, observations)."""
        if event not in ALWAYS_RELAYED:
            wanted = self._remote.get(app)
            if wanted is None or (raw and not wanted):
                return
        self._queue({"k": "event", "a": app, "e": event, "d": data, "w": raw})

    # -- start and stop -------------------------------------------------------------------

    def start(self) -> None:
        """Listen to the other replicas, take the loops nobody owns (before the first
        request, so that a restarted replica owns its loops again at once), then keep the
        leases, feed the loops and send events from threads."""
        listener = self._thread(self._listen, "listener")
        if not self._listening.wait(10):
            logger.warning("replica %s is not listening to the others yet", self.id)
        try:
            self._heartbeat()
            self._take_free()
        except Exception:
            logger.warning("replica %s: first look at the leases failed", self.id, exc_info=True)
        self._threads = [
            listener,
            self._thread(self._keep, "lease-keeper"),
            self._thread(self._feeder, "feeder"),
            self._thread(self._sender, "sender"),
        ]
        logger.info("replica %s started, owning %d loops", self.id, len(self._held))

    def stop(self) -> None:
        """Stop the threads (the events queued are sent first) and let the leases go, so
        that another replica takes the loops over at once."""
        self._stop.set()
        self._feed.set()
        self._send.set()
        for thread in self._threads:
            thread.join(timeout=5)
        with self._lock:
            held, self._held = self._held, {}
        try:
            self.store.release_leases(
                self.id, [(h.app_id, service, h.token) for (_, service), h in held.items()]
            )
        except Exception:
            logger.warning("replica %s could not release its leases", self.id, exc_info=True)

    def _thread(self, target: Any, name: str) -> threading.Thread:
        thread = threading.Thread(target=target, name=f"harmonia-{name}", daemon=True)
        thread.start()
        return thread

    # -- the lease keeper ---------------------------------------------------------------

    def _keep(self) -> None:
        next_renewal = time.monotonic() + self.renew_every
        purged = time.monotonic()
        while not self._stop.wait(self.look_every):
            try:
                if time.monotonic() >= next_renewal:
                    next_renewal = time.monotonic() + self.renew_every
                    self._renew()
                self._heartbeat()
                self._take_free()
                if time.monotonic() - purged > PURGE_AFTER_S / 10:
                    purged = time.monotonic()
                    self.store.purge_notifications(PURGE_AFTER_S)
            except Exception:
                logger.warning("replica %s: keeping the leases failed", self.id, exc_info=True)
                if time.monotonic() - self._renewed > self.lease_seconds:
                    self._drop_all("its leases could not be renewed in time")

    def _renew(self) -> None:
        held = self.held()
        if not held:
            self._renewed = time.monotonic()
            return
        kept = self.store.renew_leases(
            self.id,
            [(h.app_id, service, h.token) for (_, service), h in held.items()],
            self.lease_seconds,
        )
        self._renewed = time.monotonic()
        for (app, service), h in held.items():
            if (h.app_id, service) not in kept:
                self.lost(app, service, "another replica took it over")

    def _drop_all(self, reason: str) -> None:
        for app, service in list(self.held()):
            self.lost(app, service, reason)

    def _heartbeat(self) -> None:
        others = self.store.heartbeat(
            self.id, self.events.watched(), within=self.lease_seconds + self.look_every
        )
        remote: dict[str, bool] = {}
        for watched in others.values():
            for app, raw in watched.items():
                remote[app] = remote.get(app, False) or raw
        self._remote = remote

    def _take_free(self) -> None:
        held = self.held()
        free = [loop for loop in self.store.free_loops(self.id) if (loop[1], loop[2]) not in held]
        if free:
            self._took(self.store.take_leases(self.id, free, self.lease_seconds))

    def _took(self, taken: Iterable[Taken]) -> None:
        """Leases just taken: the loops are built afresh from the store (`Server.loop`, on
        first use), and the actions pending for push services pushed again."""
        keys = set()
        for lease in taken:
            key = (lease.app, lease.service)
            if lease.service == CONTRACT_LEASE:
                # the contract and where its SLOs stand are read afresh from the store: what
                # this replica read before (its last check, another version) may be stale;
                # so are the observers (they start again on the samples from now on)
                self.server.contracts.forget(lease.app)
                self.server.observers.forget(lease.app)
                with self._lock:
                    self._held[key] = Held(lease.app_id, lease.token)
                logger.info(
                    "replica %s checks the contract of %s (token %d)",
                    self.id,
                    lease.app,
                    lease.token,
                )
                continue
            self.server.drop_loop(*key)  # whatever this replica knew before is stale
            with self._lock:
                self._held[key] = Held(lease.app_id, lease.token)
            keys.add(key)
            logger.info(
                "replica %s owns the loop of %s/%s (token %d)",
                self.id,
                lease.app,
                lease.service,
                lease.token,
            )
        if keys:
            try:
                self.server.resume_pushes(only=keys)
            except Exception:
                logger.warning("resuming the pushes of %s failed", sorted(keys), exc_info=True)
            self._feed.set()

    # -- the feeder ---------------------------------------------------------------------

    def _feeder(self) -> None:
        while not self._stop.is_set():
            self._feed.wait(FEED_EVERY_S)
            self._feed.clear()
            held = self.held()
            if not held:
                continue
            try:
                waiting = self.store.inbox_keys()  # one query, however many loops are held
            except Exception:
                logger.warning("reading the inboxes failed", exc_info=True)
                continue
            for (app, service), lease in held.items():
                if self._stop.is_set():
                    return
                if (lease.app_id, service) not in waiting:
                    continue
                try:
                    self._drain(app, service, lease)
                except Exception:
                    logger.warning("feeding %s/%s failed", app, service, exc_info=True)
                    self.server.drop_loop(app, service)  # rebuilt from the store

    def _drain(self, name: str, service: str, held: Held) -> None:
        """Feed the loop (or, under `CONTRACT_LEASE`, the observers) the batches in its
        inbox, oldest first, taking them out of the inbox in one fenced transaction per
        `INBOX_BATCHES`."""
        app = self.server.app(name)
        feed = self._feed_observers if service == CONTRACT_LEASE else self._feed_loop
        while not self._stop.is_set():
            batches = self.store.inbox(app, service, INBOX_BATCHES)
            if not batches or not feed(app, service, held, batches):
                return
            if len(batches) < INBOX_BATCHES:
                return

    def _feed_loop(self, app: App, service: str, held: Held, batches: list[Inboxed]) -> bool:
        """Run the loop on ``batches`` and record what it decided, consuming them; False
        when the loop is gone or its lease is no longer this replica's."""
        server = self.server
        loop = server.loop(app, service)
        if loop is None or self.token(app.name, service) != held.token:
            return False
        decided = loop.ingest([row for batch in batches for row in batch.rows])
        windows, actions = server.ingestion.decisions_of(service, decided)
        try:
            stored, _ = self.store.record_decisions(
                app,
                service,
                self.id,
                held.token,
                windows=windows,
                actions=actions,
                consumed=[batch.id for batch in batches],
            )
        except LeaseLost as error:
            self.lost(app.name, service, error)
            return False
        server.ingestion.publish_decisions(app, windows, stored)
        return True

    def _feed_observers(self, app: App, service: str, held: Held, batches: list[Inboxed]) -> bool:
        """Consume other replicas' samples and hand them to the app's observers; False when
        the checks' lease is no longer this replica's."""
        try:
            self.store.record_decisions(
                app, service, self.id, held.token, consumed=[b.id for b in batches]
            )
        except LeaseLost as error:
            self.lost(app.name, service, error)
            return False
        observers = self.server.observers
        if observers.watches(app):
            for batch in batches:
                observers.submit(app, batch.rows)
        return True

    # -- between replicas -----------------------------------------------------------------

    def _queue(self, message: dict[str, Any]) -> None:
        payload = orjson.dumps({**message, "r": self.id}, default=str)
        self._queued.append(payload)
        self._send.set()

    def _sender(self) -> None:
        while True:
            self._send.wait(1.0)
            self._send.clear()
            while self._queued:
                batch: list[bytes] = []
                while self._queued and len(batch) < 500:
                    batch.append(self._queued.popleft())
                try:
                    self.store.notify(batch)
                except Exception:
                    logger.warning("sending %d events to the replicas failed", len(batch))
            if self._stop.is_set():
                return

    def _listen(self) -> None:
        import psycopg

        url = self.store.engine.url.set(drivername="postgresql")
        conninfo = url.render_as_string(hide_password=False)
        while not self._stop.is_set():
            try:
                with psycopg.connect(conninfo, autocommit=True) as connection:
                    connection.execute(f"LISTEN {CHANNEL}")
                    self._listening.set()
                    self._feed.set()  # what came meanwhile is in the inboxes
                    while not self._stop.is_set():
                        for notice in connection.notifies(timeout=0.5):
                            self._dispatch(notice.payload)
            except Exception:
                if self._stop.is_set():
                    return
                logger.warning("replica %s: listening failed; again in 1 s", self.id, exc_info=True)
                self._stop.wait(1.0)

    def _dispatch(self, payload: str) -> None:
        try:
            message = orjson.loads(payload)
            if message.get("k") == "stored":
                stored = self.store.stored_notification(int(message["id"]))
                if stored is None:
                    return
                message = orjson.loads(stored)
            self._handle(message)
        except Exception:
            logger.warning("a notification could not be handled: %.200s", payload, exc_info=True)

    def _handle(self, message: dict[str, Any]) -> None:
        kind, app, service = message.get("k"), str(message.get("a")), str(message.get("s"))
        if kind == "inbox":
            if (app, service) in self._held:
                self._feed.set()
            return
        if message.get("r") == self.id:
            return  # this replica's own, back from the database
        if kind == "event":
            event, data, raw = message["e"], message["d"], bool(message.get("w"))
            self.events.publish_here(app, event, data, raw=raw)
            self.server.heard(app, event, data)
        elif kind == "policy":
            self._policies[(app, service)] = (True, time.monotonic())
            self.server.policy_stored(app, service)
        elif kind == "version":
            self.server.version_stored(app, service, message["m"], int(message["v"]))
        elif kind == "contract":
            self.server.contracts.forget(app)
        elif kind == "observers":
            self.server.observers.forget(app)
        elif kind == "check" and self.owns_contract(app):  # another replica's window closed
            self.server.contracts.queue.submit(self.server.app(app))
