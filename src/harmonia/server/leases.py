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
- the replicas tell each other by NOTIFY what the owners must hear of (a policy applied, a
  batch in an inbox, ...) and the events their subscribers watch:
  `harmonia.server.replica_events` (`EventRelay`, which `Replicas` starts and stops beside
  its own threads). Its listener wakes the feeder.

Contract checks are leased too: an app with a contract has a lease of its own beside its
loops' (service `CONTRACT_LEASE`), taken and kept by the same keeper, and only its holder
checks the app's contract (`ContractKeeper`), so that an SLO that becomes violated is recorded
once. The other replicas count their samples towards the contract's windows as before and,
when one closes, ask the holder to check (a ``check`` notification).

On SQLite there is one process and none of this runs (`Server.replicas` is None).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harmonia.server.replica_events import EventRelay, ReplicatedEvents, start_thread
from harmonia.store import App
from harmonia.store.leases import CONTRACT_LEASE, Inboxed, LeaseLost, Taken

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


class Replicas:
    """This server's part among the replicas: the leases it holds on live loops, the
    threads that keep them (keeper) and feed the owned loops from their inboxes (feeder),
    and its link to the other replicas (`relay`: listener and sender)."""

    def __init__(self, server: Server, options: ReplicaOptions) -> None:
        if options.lease_seconds <= 0:
            raise ValueError("a lease lasts more than 0 seconds")
        self.server = server
        self.store = server.store
        self.id = options.id
        self.lease_seconds = options.lease_seconds
        self.renew_every = options.lease_seconds / 3
        self.look_every = min(LOOK_EVERY_S, self.renew_every)
        #: what this replica sends the others and hears from them
        self.relay = EventRelay(self)
        self.events: ReplicatedEvents = self.relay.events
        self._lock = threading.Lock()
        #: the leases held, by (app, service)
        self._held: dict[tuple[str, str], Held] = {}
        #: whether a service has a policy (so a loop, owned somewhere), and since when known
        self._policies: dict[tuple[str, str], tuple[bool, float]] = {}
        self._stop = threading.Event()
        self._feed = threading.Event()
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

    def owns(self, app: str, service: str) -> bool:
        """Whether this replica holds the lease of ``service``'s loop (or, under
        `CONTRACT_LEASE`, of the app's contract checks)."""
        return (app, service) in self._held

    def owns_contract(self, app: str) -> bool:
        """Whether this replica holds the lease of ``app``'s contract checks (only its
        holder checks the contract and records violations)."""
        return (app, CONTRACT_LEASE) in self._held

    def contract_changed(self, app: App) -> None:
        """A contract was applied here: the other replicas forget the one they had read
        (the holder of the checks' lease reads the new one), and this replica takes the
        lease if nobody holds it yet (the keeper's next look would, within half a
        second)."""
        self.relay.send({"k": "contract", "a": app.name})
        self._take_checks(app)

    def observers_changed(self, app: App) -> None:
        """Observers were configured here: the other replicas read them again (the holder
        of the checks' lease runs them from its next batch on), and this replica takes the
        lease if nobody holds it yet."""
        self.relay.send({"k": "observers", "a": app.name})
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
        self.relay.send({"k": "check", "a": app.name})

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
        self.policy_known(app.name, service)
        self.relay.send({"k": "policy", "a": app.name, "s": service})
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
        self.relay.send({"k": "version", "a": app.name, "s": service, "m": model, "v": version})

    def policy_known(self, app: str, service: str) -> None:
        """``service`` has a policy (applied here, or another replica says so): believed
        without asking the store again."""
        self._policies[(app, service)] = (True, time.monotonic())

    def wake_feeder(self) -> None:
        """Have the feeder look at the inboxes now (a batch came for a loop held here)."""
        self._feed.set()

    # -- start and stop -------------------------------------------------------------------

    def start(self) -> None:
        """Listen to the other replicas and send them events, take the loops nobody owns
        (before the first request, so that a restarted replica owns its loops again at
        once), then keep the leases and feed the loops from threads."""
        self.relay.start()
        try:
            self._heartbeat()
            self._take_free()
        except Exception:
            logger.warning("replica %s: first look at the leases failed", self.id, exc_info=True)
        self._threads = [
            start_thread(self._keep, "lease-keeper"),
            start_thread(self._feeder, "feeder"),
        ]
        logger.info("replica %s started, owning %d loops", self.id, len(self._held))

    def stop(self) -> None:
        """Stop the threads (the events queued are sent first) and let the leases go, so
        that another replica takes the loops over at once."""
        self._stop.set()
        self._feed.set()
        self.relay.stop()
        for thread in self._threads:
            thread.join(timeout=5)
        self.relay.join(timeout=5)
        with self._lock:
            held, self._held = self._held, {}
        try:
            self.store.release_leases(
                self.id, [(h.app_id, service, h.token) for (_, service), h in held.items()]
            )
        except Exception:
            logger.warning("replica %s could not release its leases", self.id, exc_info=True)

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
        self.relay.watched_elsewhere(others.values())

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
