"""Every energy backend keeps the EnergyMeter contract.

The powercap and NVML backends run over fakes of sysfs and of the driver (this file carries
its own, so it runs alone); the estimate backend runs for real.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from harmonia.energy import (
    EnergyMeter,
    EstimateMeter,
    Measurement,
    NvmlMeter,
    PowercapMeter,
)

# A backend under test: the meter, and a callable that plays "work happens" for it.
Setup = tuple[EnergyMeter, Callable[[], None]]


def powercap_setup(tmp_path: Path) -> Setup:
    zone = tmp_path / "intel-rapl:0"
    zone.mkdir()
    (zone / "name").write_text("package-0\n")
    (zone / "max_energy_range_uj").write_text("262143328850\n")
    counter = zone / "energy_uj"
    counter.write_text("1000\n")

    def work() -> None:
        counter.write_text(f"{int(counter.read_text()) + 1_500_000}\n")

    return PowercapMeter(tmp_path), work


class FakeNVMLError(Exception):
    pass


def nvml_setup(tmp_path: Path) -> Setup:
    energy_mj = [0]

    def work() -> None:
        energy_mj[0] += 750

    fake_pynvml: Any = SimpleNamespace(
        NVMLError=FakeNVMLError,
        nvmlInit=lambda: None,
        nvmlShutdown=lambda: None,
        nvmlDeviceGetCount=lambda: 1,
        nvmlDeviceGetHandleByIndex=lambda index: index,
        nvmlDeviceGetName=lambda handle: b"Fake GPU",
        nvmlDeviceGetTotalEnergyConsumption=lambda handle: energy_mj[0],
    )
    return NvmlMeter(nvml=fake_pynvml), work


def estimate_setup(tmp_path: Path) -> Setup:
    def work() -> None:
        sum(i * i for i in range(50_000))

    return EstimateMeter(), work


@pytest.fixture(params=[powercap_setup, nvml_setup, estimate_setup], ids=lambda f: f.__name__)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Setup:
    setup: Callable[[Path], Setup] = request.param
    return setup(tmp_path)


def test_is_an_energy_meter(backend: Setup) -> None:
    meter, _ = backend
    assert isinstance(meter, EnergyMeter)
    assert meter.source in ("rapl", "nvml", "estimate")


def test_measure_yields_a_measurement_read_at_exit(backend: Setup) -> None:
    meter, work = backend
    with meter.measure() as m:
        assert isinstance(m, Measurement)
        assert m.reading is None
        work()
        assert m.reading is None
    assert m.reading is not None
    assert m.reading.joules >= 0
    assert m.reading.seconds >= 0
    assert m.reading.source == meter.source
    assert m.joules == m.reading.joules


def test_reading_is_set_when_the_block_raises(backend: Setup) -> None:
    meter, work = backend
    with pytest.raises(LookupError), meter.measure() as m:
        work()
        raise LookupError("failed inside the block")
    assert m.reading is not None
    assert m.reading.source == meter.source
    assert m.reading.joules >= 0
