"""NVIDIA GPU energy from NVML's total-energy counter.

``nvmlDeviceGetTotalEnergyConsumption`` returns millijoules since the driver was loaded
(Volta and newer), so the energy of a block is the difference of two readings; no sampling
of instantaneous power is involved. ``pynvml`` comes from the optional ``nvidia-ml-py``
package and is imported only when a meter is built, so ``harmonia.energy`` never needs it.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self

from harmonia.core.errors import EnergyMeterUnavailable
from harmonia.energy._protocol import CounterMeter, EnergySource

_INSTALL_HINT = "nvidia-ml-py is not installed; pip install 'harmonia[nvml]'"


def _load_pynvml() -> Any:
    try:
        import pynvml
    except ImportError as error:
        raise EnergyMeterUnavailable(_INSTALL_HINT) from error
    return pynvml


def _as_text(name: bytes | str) -> str:
    """Device names are ``bytes`` in older pynvml releases and ``str`` in newer ones."""
    return name.decode(errors="replace") if isinstance(name, bytes) else name


class NvmlMeter(CounterMeter):
    """Energy of one NVIDIA GPU, or the sum over all of them.

    ``nvml`` replaces the ``pynvml`` module (tests pass a fake driver). NVML stays initialised
    until ``close()``; the meter is also a context manager that closes itself.
    """

    source: EnergySource = "nvml"

    def __init__(self, device_index: int | None = None, nvml: Any | None = None) -> None:
        if device_index is not None and device_index < 0:
            raise ValueError(f"device_index must be >= 0 or None, got {device_index}")
        self._nvml = nvml if nvml is not None else _load_pynvml()
        try:
            self._nvml.nvmlInit()
        except self._nvml.NVMLError as error:
            raise EnergyMeterUnavailable(
                f"NVML could not initialise ({error}); no usable NVIDIA driver or GPU"
            ) from error
        self._closed = False
        try:
            self._handles, self.device_names = self._open_devices(device_index)
        except BaseException:
            self.close()
            raise

    def _open_devices(self, device_index: int | None) -> tuple[list[Any], list[str]]:
        """Handles and names of the chosen devices, each checked to report total energy."""
        nvml = self._nvml
        try:
            count = nvml.nvmlDeviceGetCount()
            if count == 0:
                raise EnergyMeterUnavailable("NVML reports no NVIDIA GPU")
            if device_index is not None and device_index >= count:
                raise EnergyMeterUnavailable(
                    f"NVIDIA GPU {device_index} requested, but NVML reports {count} GPU(s)"
                )
            indices = range(count) if device_index is None else [device_index]
            handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in indices]
            names = [_as_text(nvml.nvmlDeviceGetName(h)) for h in handles]
        except nvml.NVMLError as error:
            raise EnergyMeterUnavailable(f"NVML could not list GPUs ({error})") from error
        for index, handle, name in zip(indices, handles, names, strict=True):
            try:
                nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
            except nvml.NVMLError as error:
                raise EnergyMeterUnavailable(
                    f"GPU {index} ({name}) does not report total energy consumption ({error}); "
                    "this needs a Volta or newer GPU"
                ) from error
        return handles, names

    @property
    def detail(self) -> str:
        return ", ".join(self.device_names)

    def read(self) -> list[int]:
        if self._closed:
            raise RuntimeError("NvmlMeter is closed")
        return [int(self._nvml.nvmlDeviceGetTotalEnergyConsumption(h)) for h in self._handles]

    def joules_between(self, start: list[int], end: list[int]) -> float:
        """The counters are in millijoules since the driver loaded (64-bit: no wrap)."""
        return sum(e - s for s, e in zip(start, end, strict=True)) / 1e3

    def close(self) -> None:
        """Shut NVML down; later calls do nothing."""
        if not self._closed:
            self._closed = True
            self._nvml.nvmlShutdown()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
