"""auto_meter and get_meter: backend choice and the notes that explain it."""

from __future__ import annotations

from pathlib import Path

import pytest
from energy_fakes import FakeGpu, FakeNvml, intel_tree

from harmonia.core.errors import EnergyMeterUnavailable
from harmonia.energy import (
    EnergyMeter,
    EstimateMeter,
    NvmlMeter,
    PowercapMeter,
    auto_meter,
    get_meter,
)
from harmonia.energy.auto import DEFAULT_ORDER


def no_driver() -> NvmlMeter:
    return NvmlMeter(nvml=FakeNvml(init_error="Driver Not Loaded").module)


def test_machine_without_counters_falls_back_to_estimate(tmp_path: Path) -> None:
    missing = tmp_path / "powercap"
    meter, notes = auto_meter(powercap_root=missing, factories={"nvml": no_driver})
    assert isinstance(meter, EstimateMeter)
    assert notes == [
        f"powercap: no RAPL package domain under {missing}",
        "nvml: NVML could not initialise (Driver Not Loaded); no usable NVIDIA driver or GPU",
    ]


def test_this_machine_gets_a_meter_and_a_note_per_skipped_backend() -> None:
    # Whatever this machine has, auto returns a working meter and explains each skip.
    meter, notes = auto_meter()
    assert isinstance(meter, EnergyMeter)
    chosen = {"rapl": "powercap", "nvml": "nvml", "estimate": "estimate"}[meter.source]
    skipped = DEFAULT_ORDER[: DEFAULT_ORDER.index(chosen)]
    assert [note.split(":", 1)[0] for note in notes] == list(skipped)
    with meter.measure() as m:
        sum(range(10_000))
    assert m.joules >= 0


def test_fake_powercap_tree_is_chosen(tmp_path: Path) -> None:
    meter, notes = auto_meter(powercap_root=intel_tree(tmp_path))
    assert isinstance(meter, PowercapMeter)
    assert notes == []


def test_nvml_is_chosen_when_powercap_is_missing(tmp_path: Path) -> None:
    driver = FakeNvml([FakeGpu("GPU-A")])
    meter, notes = auto_meter(
        powercap_root=tmp_path / "none",
        factories={"nvml": lambda: NvmlMeter(nvml=driver.module)},
    )
    assert isinstance(meter, NvmlMeter)
    assert [note.split(":", 1)[0] for note in notes] == ["powercap"]


def test_order_without_estimate_can_fail(tmp_path: Path) -> None:
    with pytest.raises(EnergyMeterUnavailable, match="no energy backend is usable") as info:
        auto_meter(
            order=("powercap", "nvml"), powercap_root=tmp_path, factories={"nvml": no_driver}
        )
    assert "powercap:" in str(info.value)
    assert "Driver Not Loaded" in str(info.value)


def test_unknown_backend_in_order() -> None:
    with pytest.raises(ValueError, match="'rocm'"):
        auto_meter(order=("rocm", "estimate"))


def test_estimate_parameters_pass_through(tmp_path: Path) -> None:
    meter, _ = auto_meter(order=("estimate",), watts_per_core=4.0)
    assert isinstance(meter, EstimateMeter)
    assert meter.watts_per_core == 4.0


def test_get_meter_by_name(tmp_path: Path) -> None:
    assert isinstance(get_meter("estimate", watts_per_core=7.0), EstimateMeter)
    assert isinstance(get_meter("powercap", root=intel_tree(tmp_path)), PowercapMeter)
    assert isinstance(get_meter("nvml", nvml=FakeNvml([FakeGpu("GPU-A")]).module), NvmlMeter)
    assert isinstance(get_meter("auto", order=("estimate",)), EstimateMeter)


def test_get_meter_backend_errors_propagate(tmp_path: Path) -> None:
    with pytest.raises(EnergyMeterUnavailable, match="no RAPL package domain"):
        get_meter("powercap", root=tmp_path)


def test_get_meter_unknown_name_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="'bogus'") as info:
        get_meter("bogus")
    for name in ("auto", "powercap", "nvml", "estimate"):
        assert name in str(info.value)
