"""What the replicas say to each other, over PostgreSQL LISTEN/NOTIFY.

The leases (`harmonia.server.leases`) decide which replica owns a loop; this module carries
what the replicas must hear from each other meanwhile:

- events reach the event-stream subscribers of every replica: a replica sends an event by
  NOTIFY to the others when one of them has subscribers for its app (each says which apps
  its subscribers watch in its heartbeat), and always for actions and observations, which
  the owner's loop needs (a failed action may be decided again; observations feed the
  policy).
- what the other replicas must know of a change made here goes the same way: a policy
  applied or a version described (for the loop's owner), a contract or observers configured
  (each replica reads them again), a contract window to check (for the holder of the
  checks' lease). The store sends one more kind itself, when it puts a batch in a loop's
  inbox: the owner's feeder is woken.

The sender (a thread) sends what is queued in batches, in one transaction each; the
listener (a thread with one connection of its own, LISTEN) publishes the others' events to
the subscribers here, hands the rest to this replica's `Replicas` and server, and wakes the
feeder.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import orjson

from harmonia.server.observe import Broadcaster
from harmonia.store.leases import CHANNEL

if TYPE_CHECKING:
    from harmonia.server.leases import Replicas

# the same logger as the leases': one component in the logs
logger = logging.getLogger("harmonia.server.replicas")

#: events relayed to the other replicas whatever their subscribers: their loops need them
ALWAYS_RELAYED = frozenset({"action", "observation"})
#: events waiting to be sent, at most (the oldest are dropped beyond: the stream is live)
MAX_QUEUED_EVENTS = 10_000
#: notifications sent per transaction, at most
SEND_BATCH = 500
#: how long `EventRelay.start` waits for the listener to be listening (seconds)
LISTEN_WAIT_S = 10.0


class ReplicatedEvents(Broadcaster):
    """The event stream of one replica, whose events the other replicas' subscribers see
    too (through `EventRelay.forward`)."""

    def __init__(self, relay: EventRelay, *, per_app: int, total: int) -> None:
        super().__init__(per_app=per_app, total=total)
        self._relay = relay

    def publish(self, app: str, event: str, data: dict[str, Any], *, raw: bool = False) -> None:
        super().publish(app, event, data, raw=raw)
        self._relay.forward(app, event, data, raw)

    def publish_here(self, app: str, event: str, data: dict[str, Any], *, raw: bool) -> None:
        """Publish another replica's event to the subscribers of this one only."""
        super().publish(app, event, data, raw=raw)

    def watched(self) -> dict[str, bool]:
        """The apps this replica's subscribers watch: app → whether one wants raw samples."""
        with self._lock:
            return {
                app: any(s.raw for s in subs) for app, subs in self._subscribers.items() if subs
            }


class EventRelay:
    """One replica's link to the others: the queue of what it sends them, the sender thread
    that empties it, and the listener thread (its own connection) that hears them."""

    def __init__(self, replicas: Replicas) -> None:
        self.replicas = replicas
        self.server = replicas.server
        self.store = replicas.store
        self.id = replicas.id
        guards = self.server.guards
        self.events = ReplicatedEvents(
            self, per_app=guards.max_subscribers_per_app, total=guards.max_subscribers
        )
        #: apps whose events other replicas' subscribers watch: app → raw samples too
        self._remote: dict[str, bool] = {}
        self._queued: collections.deque[bytes] = collections.deque(maxlen=MAX_QUEUED_EVENTS)
        self._stop = threading.Event()
        self._send = threading.Event()
        self._listening = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- what this replica sends ----------------------------------------------------------

    def send(self, message: dict[str, Any]) -> None:
        """Queue a message for the other replicas (signed with this replica's id, so that it
        ignores its own when the database hands it back); the sender sends it."""
        payload = orjson.dumps({**message, "r": self.id}, default=str)
        self._queued.append(payload)
        self._send.set()

    def forward(self, app: str, event: str, data: dict[str, Any], raw: bool) -> None:
        """Send an event to the other replicas if a subscriber there watches ``app`` (or if
        their loops need it: actions, observations)."""
        if event not in ALWAYS_RELAYED:
            wanted = self._remote.get(app)
            if wanted is None or (raw and not wanted):
                return
        self.send({"k": "event", "a": app, "e": event, "d": data, "w": raw})

    def watched_elsewhere(self, others: Iterable[dict[str, bool]]) -> None:
        """What the other replicas' subscribers watch (app → raw samples too, one dict per
        replica, from their heartbeats): the events `forward` sends."""
        remote: dict[str, bool] = {}
        for watched in others:
            for app, raw in watched.items():
                remote[app] = remote.get(app, False) or raw
        self._remote = remote

    # -- start and stop -------------------------------------------------------------------

    def start(self) -> None:
        """Listen to the other replicas (waiting until the listener listens, so that what
        they send from now on is heard) and send them what is queued, from threads."""
        listener = start_thread(self._listen, "listener")
        if not self._listening.wait(LISTEN_WAIT_S):
            logger.warning("replica %s is not listening to the others yet", self.id)
        self._threads = [listener, start_thread(self._sender, "sender")]

    def stop(self) -> None:
        """Tell the threads to stop (the sender sends what is queued first); `join` waits."""
        self._stop.set()
        self._send.set()

    def join(self, timeout: float) -> None:
        """Wait for the threads to end, at most ``timeout`` seconds each."""
        for thread in self._threads:
            thread.join(timeout=timeout)

    # -- the threads ----------------------------------------------------------------------

    def _sender(self) -> None:
        while True:
            self._send.wait(1.0)
            self._send.clear()
            while self._queued:
                batch: list[bytes] = []
                while self._queued and len(batch) < SEND_BATCH:
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
                    self.replicas.wake_feeder()  # what came meanwhile is in the inboxes
                    while not self._stop.is_set():
                        for notice in connection.notifies(timeout=0.5):
                            self._dispatch(notice.payload)
            except Exception:
                if self._stop.is_set():
                    return
                logger.warning("replica %s: listening failed; again in 1 s", self.id, exc_info=True)
                self._stop.wait(1.0)

    # -- what this replica hears ----------------------------------------------------------

    def _dispatch(self, payload: str) -> None:
        """Handle one notification; one too large for NOTIFY is read from the store."""
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
        replicas, server = self.replicas, self.server
        if kind == "inbox":
            if replicas.owns(app, service):
                replicas.wake_feeder()
            return
        if message.get("r") == self.id:
            return  # this replica's own, back from the database
        if kind == "event":
            event, data, raw = message["e"], message["d"], bool(message.get("w"))
            self.events.publish_here(app, event, data, raw=raw)
            server.heard(app, event, data)
        elif kind == "policy":
            replicas.policy_known(app, service)
            server.policy_stored(app, service)
        elif kind == "version":
            server.version_stored(app, service, message["m"], int(message["v"]))
        elif kind == "contract":
            server.contracts.forget(app)
        elif kind == "observers":
            server.observers.forget(app)
        elif kind == "check" and replicas.owns_contract(app):  # another replica's window closed
            server.contracts.queue.submit(server.app(app))


def start_thread(target: Callable[[], None], name: str) -> threading.Thread:
    """A daemon thread named ``harmonia-<name>`` running ``target``, started: the replicas'
    threads must not keep a stopping server alive."""
    thread = threading.Thread(target=target, name=f"harmonia-{name}", daemon=True)
    thread.start()
    return thread
