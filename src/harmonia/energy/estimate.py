"""Modelled CPU energy for machines without counters (VMs, containers, locked-down hosts).

Energy = CPU seconds consumed by this process (or thread) during the block × watts per
fully busy core. This is a model, not a measurement: it estimates only the *dynamic* power
the work adds above idle, ignores memory, GPU and frequency scaling, and is labelled
``source="estimate"`` so it is never mistaken for a counter reading.

``DEFAULT_WATTS_PER_CORE = 10.0``: server CPUs draw roughly 5-15 W per busy core above idle.
For example, a 205 W TDP 28-core Xeon gives 205 / 28 ≈ 7.3 W/core, and a 65 W 6-core desktop
part gives 65 / 6 ≈ 10.8 W/core. 10 W sits in the middle of that range; pass a figure for
your own hardware when you know it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Literal

from harmonia.energy._protocol import CounterMeter, EnergySource

DEFAULT_WATTS_PER_CORE = 10.0

Scope = Literal["process", "thread"]


def _cpu_clock(scope: Scope) -> Callable[[], float]:
    """The CPU-time clock of ``scope``, or a ValueError naming the valid scopes."""
    if scope == "process":
        return time.process_time
    if scope == "thread":
        return time.thread_time
    raise ValueError(f"scope must be 'process' or 'thread', got {scope!r}")


def cpu_energy(cpu_seconds: float, watts_per_core: float) -> float:
    """Joules for ``cpu_seconds`` of fully busy core time at ``watts_per_core``."""
    return cpu_seconds * watts_per_core


class EstimateMeter(CounterMeter):
    """Estimates energy from CPU time; always available.

    ``scope="thread"`` counts only the calling thread's CPU time, so entry and exit of
    ``measure()`` must happen on the same thread. ``clock`` replaces the CPU clock (tests
    pass a fake one); it returns CPU seconds.
    """

    source: EnergySource = "estimate"

    def __init__(
        self,
        watts_per_core: float = DEFAULT_WATTS_PER_CORE,
        scope: Scope = "process",
        clock: Callable[[], float] | None = None,
    ) -> None:
        if not (math.isfinite(watts_per_core) and watts_per_core > 0):
            raise ValueError(f"watts_per_core must be finite and > 0, got {watts_per_core!r}")
        self.watts_per_core = float(watts_per_core)
        cpu_clock = _cpu_clock(scope)
        self.scope: Scope = scope
        self._clock = clock if clock is not None else cpu_clock

    @property
    def detail(self) -> str:
        return f"cpu_time×{self.watts_per_core} W/core ({self.scope})"

    def read(self) -> float:
        return self._clock()

    def joules_between(self, start: float, end: float) -> float:
        return cpu_energy(end - start, self.watts_per_core)
