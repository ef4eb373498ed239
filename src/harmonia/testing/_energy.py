"""The conformance checks of an energy meter (entry-point group ``harmonia.energy_meters``)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, get_args

from harmonia.energy._protocol import EnergyMeter, EnergySource, Measurement
from harmonia.plugins import ENERGY_METERS, create_plugin
from harmonia.testing._check import Check, plugin_label, raises, run_all

Work = Callable[[], None]


def busy_work() -> None:
    """A little CPU work for a meter to measure."""
    sum(i * i for i in range(50_000))


class _Failure(LookupError):
    """Raised inside a measured block by the check, and by nothing else."""


def _is_an_energy_meter(meter: EnergyMeter, work: Work) -> None:
    assert isinstance(meter, EnergyMeter), f"{meter!r} does not satisfy EnergyMeter"
    sources = get_args(EnergySource)
    assert meter.source in sources, f"source {meter.source!r} is not one of {sources}"


def _measure_yields_a_measurement_read_at_exit(meter: EnergyMeter, work: Work) -> None:
    with meter.measure() as m:
        assert isinstance(m, Measurement), f"measure() yields {type(m).__name__}"
        assert m.reading is None, "a reading before the block ran"
        work()
        assert m.reading is None, "a reading before the block exited"
    reading = m.reading
    assert reading is not None, "no reading after the block"
    assert reading.joules >= 0, f"negative energy {reading.joules}"
    assert reading.seconds >= 0, f"negative duration {reading.seconds}"
    assert reading.source == meter.source, (
        f"reading from {reading.source!r}, meter says {meter.source!r}"
    )
    assert m.joules == reading.joules, "Measurement.joules differs from its reading's"


def _reading_is_set_when_the_block_raises(meter: EnergyMeter, work: Work) -> None:
    with raises(_Failure), meter.measure() as m:
        work()
        raise _Failure("failed inside the block")
    reading = m.reading
    assert reading is not None, "no reading after a block that raised"
    assert reading.source == meter.source, f"reading from {reading.source!r}"
    assert reading.joules >= 0, f"negative energy {reading.joules}"


_CHECKS = [
    _is_an_energy_meter,
    _measure_yields_a_measurement_read_at_exit,
    _reading_is_set_when_the_block_raises,
]


def energy_meter_checks(
    meter: str | EnergyMeter | Callable[[], EnergyMeter], *, work: Work = busy_work
) -> list[Check]:
    """Every conformance check of one energy meter, each a `Check` to call.

    ``meter``: an instance, a name registered under ``harmonia.energy_meters`` (built with
    no parameters), or a factory called with none; ``work``: what happens inside a measured
    block (default: a little CPU work; a test over a fake counter advances the counter).
    """
    if isinstance(meter, str):
        instance: Any = create_plugin(ENERGY_METERS, meter)
    elif isinstance(meter, EnergyMeter) and not isinstance(meter, type):
        instance = meter
    else:
        instance = meter()
    label = plugin_label(meter)
    return [Check(label, c.__name__.lstrip("_"), partial(c, instance, work)) for c in _CHECKS]


def check_energy_meter(
    meter: str | EnergyMeter | Callable[[], EnergyMeter], *, work: Work = busy_work
) -> None:
    """Run every conformance check on one energy meter; the first failure raises an
    `AssertionError` naming the meter and the check. Arguments as `energy_meter_checks`."""
    run_all(energy_meter_checks(meter, work=work))
