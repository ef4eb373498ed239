"""When contract checks run: the windows that close as samples arrive (`WindowSchedule`) and
the worker that runs the checks they ask for, one at a time, settled and coalesced per app
(`CheckQueue`). What a check does is `harmonia.server.contracts`'s business.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from harmonia.core.application import Application
from harmonia.core.contracts import SLO, Contract
from harmonia.store import App

logger = logging.getLogger("harmonia.server.contracts")

#: how long after a window closes its check runs (seconds): other stages' samples of the
#: same traces arrive meanwhile (`CheckQueue`)
SETTLE_S = 1.0


def scope_services(app: Application, slo: SLO) -> frozenset[str]:
    """The services whose samples an SLO's window counts: its service, its stage's, or end
    to end the final stages' (a trace is counted when its last stage reports)."""
    if slo.scope == "service":
        return frozenset({str(slo.target)})
    followed = {name for stage in app.stages for name in stage.after}
    stages = [
        stage
        for stage in app.stages
        if (stage.name == slo.target if slo.scope == "stage" else stage.name not in followed)
    ]
    return frozenset(service.name for stage in stages for service in stage.services)


@dataclass
class WindowSchedule:
    """When an app's contract windows close, counted from the samples ingestion stores: a
    window of N samples after every N samples of its SLO's scope, a time window once that
    long has passed since the app's last check."""

    version: int
    #: the services each count window reads, and its size
    counts: list[tuple[frozenset[str], int]]
    #: the shortest time window (seconds), if any SLO has one
    seconds: float | None
    #: when the app was last checked (or when its contract was first seen)
    checked_at: float
    #: samples counted towards each count window since it last closed
    seen: list[int] = field(default_factory=list)
    #: when samples last arrived (the periodic check leaves an app with traffic alone)
    arrived_at: float = -math.inf

    @classmethod
    def of(cls, version: int, contract: Contract, app: Application, now: float) -> WindowSchedule:
        counts: set[tuple[frozenset[str], int]] = set()
        durations = []
        for slo in contract.slos:
            window = slo.window or contract.window
            if window.samples is not None:
                counts.add((scope_services(app, slo), window.samples))
            elif window.seconds is not None:
                durations.append(window.seconds)
        ordered = sorted(counts, key=lambda c: (sorted(c[0]), c[1]))
        return cls(version, ordered, min(durations, default=None), now, [0] * len(ordered))

    def feed(self, arrived: Mapping[str, int], now: float) -> bool:
        """Count samples that arrived (per service); whether that closed a window."""
        self.arrived_at = now
        closed = False
        for i, (services, size) in enumerate(self.counts):
            added = sum(n for service, n in arrived.items() if service in services)
            if added:
                total = self.seen[i] + added
                closed = closed or total >= size
                self.seen[i] = total % size
        if self.seconds is not None and now - self.checked_at >= self.seconds:
            self.checked_at = now  # closed: the next batches wait for the next one
            closed = True
        return closed

    def idle(self, now: float, every: float) -> bool:
        """Whether neither samples nor a check came for ``every`` seconds: the periodic
        check's turn (a time window closes without samples too)."""
        return now - self.arrived_at >= every and now - self.checked_at >= every


class CheckQueue:
    """Checks asked for by ingestion, run one at a time on a worker thread started on first
    use, each ``settle_s`` after it was asked for: the samples of the same traces that other
    stages and instances send through their own probes (which flush every second by default)
    arrive meanwhile, so an end-to-end window is not read with its traces half reported.

    An app is queued at most once: a burst of batches that close windows while it waits or
    while its check runs coalesces into one check, so heavy traffic neither piles up checks
    nor waits for them. A failed check is logged; the next window checks again."""

    def __init__(self, check: Callable[[App], object], settle_s: float = SETTLE_S) -> None:
        self.settle_s = settle_s
        self._check = check
        #: app -> (app, when its check is due on the monotonic clock), in arrival order
        self._pending: dict[str, tuple[App, float]] = {}
        self._running: str | None = None
        self._ready = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopped = False

    def submit(self, app: App) -> None:
        """Queue a check of ``app`` (nothing if one is queued already). Never blocks."""
        with self._ready:
            if self._stopped or app.name in self._pending:
                return
            self._pending[app.name] = (app, time.monotonic() + self.settle_s)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="harmonia-contracts", daemon=True
                )
                self._thread.start()
            self._ready.notify()

    def join(self, timeout: float = 10.0) -> bool:
        """Wait until no check is queued or running; False if ``timeout`` came first."""
        with self._ready:
            return self._ready.wait_for(
                lambda: not self._pending and self._running is None, timeout
            )

    def stop(self, timeout: float = 10.0) -> None:
        """Drop what is queued, let the running check finish, end the worker."""
        with self._ready:
            self._stopped = True
            self._pending.clear()
            self._ready.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _next(self) -> App | None:
        """The next app whose check is due, waiting for it; None once stopped."""
        with self._ready:
            while not self._stopped:
                if not self._pending:
                    self._ready.wait()
                    continue
                name, (app, due) = next(iter(self._pending.items()))  # the earliest due
                wait = due - time.monotonic()
                if wait > 0:
                    self._ready.wait(wait)
                    continue
                del self._pending[name]
                self._running = name
                return app
            return None

    def _run(self) -> None:
        while (app := self._next()) is not None:
            try:
                self._check(app)
            except Exception:
                logger.exception("checking the contract of %s failed", app.name)
            finally:
                with self._ready:
                    self._running = None
                    self._ready.notify_all()
