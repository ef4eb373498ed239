"""How the probe waits out a failing server: the backoff between attempts and the outage.

A restart of the server, a redeployment or a network partition lasts seconds to minutes,
so a probe retries for a *time* (``retry_for``), not for a number of attempts: five
attempts with doubling waits from 50 ms span 0.75 s, which lost half the samples of a
4-second restart. Waits double up to a cap, so the probe notices within ``cap`` seconds that
the server is back, and are jittered, so the probes of a fleet that lost the same server at
the same instant do not all come back in the same millisecond.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_DOUBLINGS = 64
"""Past this many doublings every wait is the cap; keeps ``2 ** n`` from overflowing."""


@dataclass(frozen=True)
class Backoff:
    """Waits that double from ``first`` seconds up to ``cap``, with "equal jitter".

    The wait before attempt ``n + 1`` is drawn between half and all of
    ``min(cap, first * 2 ** (n - 1))``: the jitter spreads a fleet's retries, the lower
    half keeps the waits growing so a long outage costs few requests.

    >>> backoff = Backoff(0.05, 5.0, random=lambda: 1.0)
    >>> [backoff.delay(n) for n in (1, 2, 3, 8, 1000)]
    [0.05, 0.1, 0.2, 5.0, 5.0]
    >>> Backoff(0.05, 5.0, random=lambda: 0.0).delay(2)
    0.05
    """

    first: float
    cap: float
    random: Callable[[], float] = field(default=random.random, compare=False)

    def delay(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th failed attempt in a row (from 1)."""
        ceiling = min(self.cap, self.first * 2.0 ** min(failures - 1, MAX_DOUBLINGS))
        return ceiling * (0.5 + 0.5 * self.random())


class Outage:
    """The run of failed attempts the sender is in: since when, how many, what it cost.

    ``retry_for`` is measured from the outage's first failure, not from each batch's first
    attempt: otherwise every batch queued behind a long outage would be retried for
    ``retry_for`` again, and a closing probe could wait that long once per batch.
    Any answer from the server, even a rejection, ends the outage.
    """

    def __init__(self) -> None:
        self.since: float | None = None
        self.failures = 0
        self.dropped = 0
        self.last_error = ""

    @property
    def ongoing(self) -> bool:
        """Whether the last attempt failed retryably."""
        return self.since is not None

    def failed(self, now: float, error: str) -> bool:
        """Count a retryable failure at ``now``; True when it begins a new outage."""
        begins = self.since is None
        if begins:
            self.since = now
        self.failures += 1
        self.last_error = error
        return begins

    def age(self, now: float) -> float:
        """Seconds since the outage began; 0 when there is none."""
        return 0.0 if self.since is None else now - self.since

    def end(self) -> None:
        """The server answered: forget the outage."""
        self.since = None
        self.failures = 0
        self.dropped = 0
        self.last_error = ""
