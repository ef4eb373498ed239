"""Energy per call of something too quick for any meter to see once: many calls, measured in
bursts, and the median burst taken.

One prediction of a small model takes microseconds, below what any energy counter resolves
(RAPL updates about every millisecond), so its energy is measured over many calls and
divided. One block of calls takes whatever else the machine did meanwhile with it: a
scheduler hiccup or a neighbour's burst lands in the figure, and a strategy that prices
models by their stored energy then decides differently on the same stream from one
calibration to the next. Measured in bursts, a disturbance spoils one burst, and the
median of the bursts leaves it out.

>>> from harmonia.energy import EstimateMeter
>>> joules, seconds = measure_per_call(EstimateMeter(), abs, [-1, 2, -3], calls=100)
>>> joules >= 0 and seconds >= 0
True
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from typing import Any

from harmonia.energy._protocol import EnergyMeter

#: bursts of calls in one calibration: a median of five outvotes two spoiled ones
BURSTS = 5


def measure_per_call(
    meter: EnergyMeter,
    call: Callable[[Any], object],
    inputs: Sequence[Any],
    *,
    calls: int,
    bursts: int = BURSTS,
) -> tuple[float, float]:
    """Joules and seconds per call of ``call``, cycling through ``inputs``: ``bursts``
    bursts of ``calls`` calls each, the median burst's figures (each median taken on its
    own).

    A burst should last well over the meter's resolution (a millisecond for RAPL): the
    systems' calibrations give their quickest models bursts of a few milliseconds.
    """
    if len(inputs) == 0:
        raise ValueError("measuring energy per call needs at least one input")
    if calls < 1 or bursts < 1:
        raise ValueError(f"calls ({calls}) and bursts ({bursts}) must each be at least 1")
    joules: list[float] = []
    seconds: list[float] = []
    for burst in range(bursts):
        start = burst * calls
        batch = [inputs[(start + i) % len(inputs)] for i in range(calls)]
        with meter.measure() as measurement:
            for item in batch:
                call(item)
        reading = measurement.reading
        assert reading is not None
        joules.append(reading.joules / calls)
        seconds.append(reading.seconds / calls)
    return statistics.median(joules), statistics.median(seconds)
