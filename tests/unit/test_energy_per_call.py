"""measure_per_call: energy per call over bursts, the median burst taken."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from energy_fakes import SteppingClock

from harmonia.energy import EstimateMeter
from harmonia.energy.per_call import BURSTS, measure_per_call


def disturbed(seen: list[int], clock: SteppingClock) -> Callable[[int], None]:
    """A call that costs 1 ms of CPU, but 10 ms from the 101st call to the 200th (a
    neighbour's burst while they run)."""

    def call(item: int) -> None:
        seen.append(item)
        clock.now += 0.010 if 100 < len(seen) <= 200 else 0.001

    return call


def test_a_disturbed_burst_does_not_move_the_figure() -> None:
    clock, seen = SteppingClock(), list[int]()
    meter = EstimateMeter(watts_per_core=10.0, clock=clock)

    joules, _ = measure_per_call(meter, disturbed(seen, clock), [1, 2, 3], calls=100)

    assert len(seen) == BURSTS * 100
    assert seen[:4] == [1, 2, 3, 1]  # the inputs, in turn
    assert joules == pytest.approx(0.001 * 10.0)


def test_one_block_charges_the_disturbance_to_every_call() -> None:
    clock, seen = SteppingClock(), list[int]()
    meter = EstimateMeter(watts_per_core=10.0, clock=clock)

    joules, _ = measure_per_call(meter, disturbed(seen, clock), [1], calls=500, bursts=1)

    assert joules == pytest.approx((400 * 0.001 + 100 * 0.010) / 500 * 10.0)


@pytest.mark.parametrize(
    ("inputs", "calls", "bursts", "named"),
    [([], 10, 5, "at least one input"), ([1], 0, 5, "calls (0)"), ([1], 10, 0, "bursts (0)")],
)
def test_nothing_to_measure_is_named(
    inputs: list[int], calls: int, bursts: int, named: str
) -> None:
    with pytest.raises(ValueError, match=named.replace("(", r"\(").replace(")", r"\)")):
        measure_per_call(EstimateMeter(), abs, inputs, calls=calls, bursts=bursts)
