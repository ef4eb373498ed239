"""The `EnergyMeter` protocol: measure the energy of a block of work and say how it was obtained."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

EnergySource = Literal["rapl", "nvml", "estimate"]


@dataclass(frozen=True)
class EnergyReading:
    """Energy spent by one measured block of work.

    ``source`` says how the number was obtained, so that a figure measured by a hardware
    counter is never confused with a modelled one; ``detail`` names the domains or constants.
    """

    joules: float
    seconds: float
    source: EnergySource
    detail: str = ""


class Measurement:
    """Handle yielded by ``EnergyMeter.measure()``; its ``reading`` is set when the block exits."""

    def __init__(self) -> None:
        self.reading: EnergyReading | None = None

    @property
    def joules(self) -> float:
        if self.reading is None:
            raise RuntimeError("the measured block has not finished yet")
        return self.reading.joules


@runtime_checkable
class EnergyMeter(Protocol):
    """Measures the energy of a block of work.

    >>> from harmonia.energy import EstimateMeter
    >>> meter = EstimateMeter()
    >>> with meter.measure() as m:
    ...     _ = sum(range(10_000))
    >>> m.reading.source
    'estimate'
    """

    source: EnergySource

    def measure(self) -> AbstractContextManager[Measurement]:
        """Context manager: energy spent between entry and exit lands in ``Measurement.reading``."""
        ...


class CounterMeter(ABC):
    """Shared ``measure()`` of every backend: read a counter before and after the block.

    A backend says how to read its counter (``read``), how two readings turn into joules
    (``joules_between``), its ``source`` and a ``detail`` line; the reading is set even when the
    block raises, because the energy was spent either way. ``read`` and ``joules_between`` are
    public so that a hot path (the sdk's probe) can measure without a context manager.
    """

    source: EnergySource

    @property
    @abstractmethod
    def detail(self) -> str: ...

    @abstractmethod
    def read(self) -> Any: ...

    @abstractmethod
    def joules_between(self, start: Any, end: Any) -> float: ...

    @contextmanager
    def measure(self) -> Iterator[Measurement]:
        measurement = Measurement()
        start = self.read()
        t0 = time.perf_counter()
        try:
            yield measurement
        finally:
            seconds = time.perf_counter() - t0
            measurement.reading = EnergyReading(
                joules=self.joules_between(start, self.read()),
                seconds=seconds,
                source=self.source,
                detail=self.detail,
            )
