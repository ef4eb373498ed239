"""Every registered energy meter passes the public conformance kit (`harmonia.testing`).

The powercap and NVML backends run over fakes of sysfs and of the driver (this file carries
its own, so it runs alone); the estimate backend, and any other, runs for real.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from harmonia.energy import EnergyMeter, NvmlMeter, PowercapMeter
from harmonia.plugins import ENERGY_METERS, create_plugin, plugin_names
from harmonia.testing import busy_work, energy_meter_checks

# A backend under test: the meter, and a callable that plays "work happens" for it.
Setup = tuple[EnergyMeter, Callable[[], None]]
NAMES = plugin_names(ENERGY_METERS)


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


SETUPS: dict[str, Callable[[Path], Setup]] = {"powercap": powercap_setup, "nvml": nvml_setup}


def test_every_faked_meter_is_registered() -> None:
    assert {*SETUPS, "estimate"} <= set(NAMES)


CHECKS = [check.name for check in energy_meter_checks("estimate")]


@pytest.mark.parametrize("check", CHECKS)
@pytest.mark.parametrize("name", NAMES)
def test_energy_meter(name: str, check: str, tmp_path: Path) -> None:
    setup = SETUPS.get(name)
    meter, work = setup(tmp_path) if setup else (create_plugin(ENERGY_METERS, name), busy_work)
    checks = {c.name: c for c in energy_meter_checks(meter, work=work)}
    checks[check]()
