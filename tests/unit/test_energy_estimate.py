"""EstimateMeter: CPU time × watts per core."""

from __future__ import annotations

import math
import threading
import time

import pytest
from energy_fakes import SteppingClock

from harmonia.energy import DEFAULT_WATTS_PER_CORE, EnergyMeter, EstimateMeter


def busy(cpu_seconds: float) -> None:
    """Burn ``cpu_seconds`` of the calling thread's CPU time."""
    end = time.thread_time() + cpu_seconds
    while time.thread_time() < end:
        sum(range(1_000))


def cpu_joules_of_other_thread_work(meter: EstimateMeter) -> float:
    """Joules the meter sees while the measuring thread waits and another one works."""
    worker = threading.Thread(target=busy, args=(0.1,))
    with meter.measure() as m:
        worker.start()
        worker.join()
    return m.joules


@pytest.mark.parametrize("watts", [DEFAULT_WATTS_PER_CORE, 3.5])
def test_joules_are_cpu_seconds_times_watts(watts: float) -> None:
    clock = SteppingClock()
    meter = EstimateMeter(watts_per_core=watts, clock=clock)
    with meter.measure() as m:
        assert m.reading is None
        clock.now += 0.5
    assert m.joules == pytest.approx(0.5 * watts)
    assert m.reading is not None
    assert m.reading.detail == f"cpu_time×{float(watts)} W/core (process)"


def test_default_is_ten_watts_per_core() -> None:
    assert DEFAULT_WATTS_PER_CORE == 10.0
    assert EstimateMeter().watts_per_core == 10.0


def test_real_clock_counts_busy_work() -> None:
    meter = EstimateMeter()
    assert isinstance(meter, EnergyMeter)
    with meter.measure() as m:
        busy(0.05)
    assert m.reading is not None
    assert m.reading.source == "estimate"
    assert m.joules > 0
    assert m.reading.seconds > 0
    assert m.reading.detail == "cpu_time×10.0 W/core (process)"


def test_thread_scope_counts_only_the_measuring_thread() -> None:
    # 0.1 s of CPU in another thread: 1 J for the process, about nothing for this thread.
    assert cpu_joules_of_other_thread_work(EstimateMeter(scope="process")) > 0.5
    assert cpu_joules_of_other_thread_work(EstimateMeter(scope="thread")) < 0.1
    assert EstimateMeter(scope="thread").detail.endswith("(thread)")


@pytest.mark.parametrize("watts", [0.0, -1.0, math.inf, math.nan])
def test_invalid_watts(watts: float) -> None:
    with pytest.raises(ValueError, match="watts_per_core"):
        EstimateMeter(watts_per_core=watts)


def test_invalid_scope() -> None:
    with pytest.raises(ValueError, match="scope"):
        EstimateMeter(scope="machine")  # type: ignore[arg-type]


def test_reading_is_set_when_the_block_raises() -> None:
    clock = SteppingClock()
    meter = EstimateMeter(clock=clock)
    with pytest.raises(ZeroDivisionError), meter.measure() as m:
        clock.now += 0.25
        _ = 1 / 0
    assert m.joules == pytest.approx(2.5)
