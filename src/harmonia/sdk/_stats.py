"""`ProbeStats`: what happened to the samples and actions a probe handled.

Counters are updated by the sender thread (and by callers when the buffer overflows) under a
lock, so a reader never sees a torn update; `snapshot` copies them at one instant.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace


@dataclass
class ProbeStats:
    """Counts of samples (``sent``, ``rejected``, ``dropped``, ``spooled``), batches and
    action outcomes.

    ``sent``: samples the server accepted, in ``batches`` replies. ``rejected``: samples in
    batches the server refused (4xx), never retried. ``dropped``: samples lost on this side:
    evicted from a full buffer or a full spool, given up on after ``retry_for`` seconds of
    outage without a spool, left unsent when ``close`` timed out without a spool, invalid
    (non-finite timestamp, negative latency...), or recorded after ``close``. ``spooled``:
    samples written to the spool to be sent later (they count as ``sent`` once they are,
    possibly by the next process to use the spool).
    """

    sent: int = 0
    rejected: int = 0
    dropped: int = 0
    batches: int = 0
    actions_applied: int = 0
    actions_failed: int = 0
    spooled: int = 0
    _lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False
    )

    def add(
        self,
        *,
        sent: int = 0,
        rejected: int = 0,
        dropped: int = 0,
        batches: int = 0,
        actions_applied: int = 0,
        actions_failed: int = 0,
        spooled: int = 0,
    ) -> None:
        """Add to the counters (used by the probe)."""
        with self._lock:
            self.sent += sent
            self.rejected += rejected
            self.dropped += dropped
            self.batches += batches
            self.actions_applied += actions_applied
            self.actions_failed += actions_failed
            self.spooled += spooled

    def snapshot(self) -> ProbeStats:
        """A copy of the counters taken at one instant."""
        with self._lock:
            return replace(self)
