"""Observers run beside ingestion, never in its way: a batch's samples are handed to one
worker thread through a bounded queue (full: the batch is skipped and counted, ingestion goes
on), the worker feeds each application's `ObserverRunner` and ticks the time-fired ones, and
every run is stored and published as an ``observation`` event. A failing observer is recorded
with its error (the runner contains it); a failing store write is logged.

Among replicas (`harmonia.server.leases`) the replica holding the app's checks' lease runs its
observers, on its own batches and on those the others hand over through the inbox: each run
is stored once and sees every replica's samples. The observers of an app whose lease moves
start again on the new holder, from the configuration stored."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from harmonia.core.errors import HarmoniaError, Issue, PolicyError, UnknownPluginError
from harmonia.observation import Observation, ObserverRunner, ObserverSpec, parse_observers
from harmonia.policies import load_document
from harmonia.server.observe import finite_or_none
from harmonia.server.schemas import field_errors
from harmonia.store import App

if TYPE_CHECKING:
    from harmonia.server.service import Server

logger = logging.getLogger("harmonia.server.observers")
#: batches waiting for the worker; beyond, a batch is skipped (counted in ``skipped``)
QUEUE_BATCHES = 256
#: how often time-fired observers are looked at (seconds)
TICK_S = 1.0


def read_observers(text: str) -> list[ObserverSpec]:
    """Observer specs from YAML or JSON (``observers: [...]``); a `PolicyError` names each
    bad field, and an unknown observer or parameter fails here, not at its first run."""
    document = load_document(text)
    try:
        specs = parse_observers(document)
    except ValidationError as error:
        raise PolicyError([Issue(e["field"], e["reason"]) for e in field_errors(error)]) from None
    try:
        ObserverRunner(specs)  # builds every observer: unknown plugins and parameters fail
    except (UnknownPluginError, ValueError, TypeError) as error:
        raise PolicyError([Issue("observers", str(error))]) from None
    return specs


class ObserverWorker:
    """The server's observers: configured per application, run on one worker thread."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.runner = ObserverRunner(clock=server.clock)
        self._queue: queue.Queue[tuple[App, Sequence[dict[str, Any]]] | None] = queue.Queue(
            QUEUE_BATCHES
        )
        self._watched: dict[str, bool] = {}
        self._lock = threading.Lock()
        self.skipped = 0
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="harmonia-observers", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None

    def configure(self, app: App, text: str) -> int:
        """Validate and store the app's observers; they run from the next batch on."""
        specs = read_observers(text)
        document = {"observers": [s.model_dump(mode="json", exclude_none=True) for s in specs]}
        version = self.server.store.add_observers(app, document)
        with self._lock:
            self.runner.configure(app.name, specs)
            self._watched[app.name] = bool(specs)
        if self.server.replicas is not None:
            self.server.replicas.observers_changed(app)
        return version

    def forget(self, name: str) -> None:
        """Drop what is known of app ``name``'s observers (configured on another replica,
        or the lease of its checks taken here): read again from the store on next use."""
        with self._lock:
            self._watched.pop(name, None)
            self.runner.forget(name)

    def watches(self, app: App) -> bool:
        """Whether the app has observers (read from the store once)."""
        with self._lock:
            known = self._watched.get(app.name)
        if known is not None:
            return known
        stored = self.server.store.observers(app)
        specs = parse_observers(stored[1]) if stored is not None else []
        with self._lock:
            if app.name not in self._watched:  # observers configured meanwhile win
                if specs:
                    self.runner.configure(app.name, specs)
                self._watched[app.name] = bool(specs)
            return self._watched[app.name]

    def submit(self, app: App, rows: Sequence[dict[str, Any]]) -> None:
        """Hand a stored batch to the worker, or skip it when the worker is behind."""
        replicas = self.server.replicas
        if replicas is not None and not self.server.holds_checks(app.name):
            try:  # the holder of the app's checks' lease runs them
                replicas.hand_to_observers(app, list(rows))
            except Exception:  # stored all the same: only the observers miss them
                self.skipped += 1
                logger.warning("handing %s's samples to its observers failed", app.name)
            return
        try:
            self._queue.put_nowait((app, rows))
        except queue.Full:
            self.skipped += 1

    def _run(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=TICK_S)
            except queue.Empty:
                item = ()  # type: ignore[assignment]
            if item is None:
                return
            try:
                if item:
                    app, rows = item
                    if self.server.holds_checks(app.name):  # the lease may have moved meanwhile
                        self._record(app, self.runner.feed(app.name, rows))
                for name in self.runner.apps():
                    if self.server.holds_checks(name):
                        self._record_named(name, self.runner.tick(name))
            except Exception:
                logger.exception("running observers failed; the next batch runs them again")

    def _record_named(self, name: str, observations: list[Observation]) -> None:
        if observations:
            self._record(self.server.app(name), observations)

    def _record(self, app: App, observations: list[Observation]) -> None:
        if not observations:
            return
        now = self.server.clock()
        rows = [
            {
                "ts": now,
                "name": o.name,
                "observer": o.observer,
                "size": o.size,
                "values": {k: finite_or_none(float(v)) for k, v in o.result.values.items()},
                "flagged_ts": [float(t) for t in o.result.flagged_ts][:1000],
                "explanation": o.result.explanation[:2000],
                "error": None if o.result.error is None else o.result.error[:2000],
            }
            for o in observations
        ]
        try:
            self.server.store.add_observations(app, rows)
        except HarmoniaError:
            logger.exception("storing observations of %s failed", app.name)
            return
        loops = self.server.loops(app).values()
        for observation, row in zip(observations, rows, strict=True):
            if observation.result.error is None:
                for loop in loops:  # what was stored is what the policies read
                    loop.note_observation(observation.name, observation.result.values)
            self.server.events.publish(app.name, "observation", row)
