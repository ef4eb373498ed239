"""The `EnergyMeter` protocol: measure the energy of a block of work and say how it was obtained."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

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
