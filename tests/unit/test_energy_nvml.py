"""NvmlMeter over a fake NVIDIA driver."""

from __future__ import annotations

import sys

import pytest
from energy_fakes import FakeGpu, FakeNvml

from harmonia.core.errors import EnergyMeterUnavailable
from harmonia.energy import EnergyMeter, NvmlMeter


def test_delta_in_joules() -> None:
    driver = FakeNvml([FakeGpu(b"NVIDIA H100 80GB HBM3", energy_mj=10_000)])
    meter = NvmlMeter(nvml=driver.module)
    assert isinstance(meter, EnergyMeter)
    with meter.measure() as m:
        assert m.reading is None
        driver.gpus[0].energy_mj += 2_500
    assert m.reading is not None
    assert m.joules == pytest.approx(2.5)
    assert m.reading.source == "nvml"
    assert m.reading.seconds >= 0
    assert m.reading.detail == "NVIDIA H100 80GB HBM3"


def test_all_devices_summed() -> None:
    driver = FakeNvml([FakeGpu("GPU-A"), FakeGpu(b"GPU-B", energy_mj=7)])
    meter = NvmlMeter(nvml=driver.module)
    with meter.measure() as m:
        driver.gpus[0].energy_mj += 1_000
        driver.gpus[1].energy_mj += 3_000
    assert m.joules == pytest.approx(4.0)
    assert meter.device_names == ["GPU-A", "GPU-B"]
    assert m.reading is not None
    assert m.reading.detail == "GPU-A, GPU-B"


def test_one_device_by_index() -> None:
    driver = FakeNvml([FakeGpu("GPU-A"), FakeGpu("GPU-B")])
    meter = NvmlMeter(device_index=1, nvml=driver.module)
    with meter.measure() as m:
        driver.gpus[0].energy_mj += 1_000_000  # not measured
        driver.gpus[1].energy_mj += 500
    assert m.joules == pytest.approx(0.5)
    assert meter.device_names == ["GPU-B"]


def test_reading_is_set_when_the_block_raises() -> None:
    driver = FakeNvml([FakeGpu("GPU-A")])
    meter = NvmlMeter(nvml=driver.module)
    with pytest.raises(RuntimeError, match="boom"), meter.measure() as m:
        driver.gpus[0].energy_mj += 1_000
        raise RuntimeError("boom")
    assert m.joules == pytest.approx(1.0)


def test_init_failure_names_the_nvml_error() -> None:
    driver = FakeNvml(init_error="Driver Not Loaded")
    with pytest.raises(EnergyMeterUnavailable, match="Driver Not Loaded"):
        NvmlMeter(nvml=driver.module)


def test_missing_module_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # makes `import pynvml` fail
    with pytest.raises(EnergyMeterUnavailable, match=r"pip install 'harmonia\[nvml\]'"):
        NvmlMeter()


def test_no_gpu() -> None:
    driver = FakeNvml([])
    with pytest.raises(EnergyMeterUnavailable, match="no NVIDIA GPU"):
        NvmlMeter(nvml=driver.module)
    assert driver.initialised == 0  # NVML was shut down again


def test_index_out_of_range() -> None:
    driver = FakeNvml([FakeGpu("GPU-A")])
    with pytest.raises(EnergyMeterUnavailable, match="GPU 3 requested"):
        NvmlMeter(device_index=3, nvml=driver.module)
    assert driver.initialised == 0


def test_negative_index_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="device_index"):
        NvmlMeter(device_index=-1, nvml=FakeNvml([FakeGpu("GPU-A")]).module)


def test_gpu_without_energy_counter() -> None:
    driver = FakeNvml([FakeGpu("Tesla P100", supports_energy=False)])
    with pytest.raises(EnergyMeterUnavailable, match=r"Tesla P100.*Not Supported"):
        NvmlMeter(nvml=driver.module)
    assert driver.initialised == 0


def test_close_shuts_nvml_down_once() -> None:
    driver = FakeNvml([FakeGpu("GPU-A")])
    with NvmlMeter(nvml=driver.module) as meter:
        assert driver.initialised == 1
    assert driver.initialised == 0
    meter.close()
    assert driver.initialised == 0
    with pytest.raises(RuntimeError, match="closed"), meter.measure():
        pass
