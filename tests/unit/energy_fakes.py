"""Fakes of the operating system and driver that the energy backends read.

They stand in for sysfs, the NVIDIA driver and the CPU clock, never for code under test.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

MAX_RANGE_UJ = 262_143_328_850  # a real Intel package's max_energy_range_uj


class SteppingClock:
    """A CPU clock (what `EstimateMeter` reads) that the test advances by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def add_zone(
    root: Path, zone: str, name: str, energy_uj: int = 0, max_range_uj: int = MAX_RANGE_UJ
) -> Path:
    """Create a powercap zone directory like the kernel's, at ``root / zone``."""
    zone_dir = root / zone
    zone_dir.mkdir(parents=True)
    (zone_dir / "name").write_text(f"{name}\n")
    (zone_dir / "energy_uj").write_text(f"{energy_uj}\n")
    (zone_dir / "max_energy_range_uj").write_text(f"{max_range_uj}\n")
    return zone_dir


def set_energy(root: Path, zone: str, energy_uj: int) -> None:
    """Move a zone's counter, as the hardware does while work runs."""
    (root / zone / "energy_uj").write_text(f"{energy_uj}\n")


def intel_tree(root: Path) -> Path:
    """Two packages, with the subzone and psys zone that a real Intel server also has."""
    add_zone(root, "intel-rapl:0", "package-0", energy_uj=1_000_000)
    add_zone(root, "intel-rapl:0/intel-rapl:0:0", "core", energy_uj=500_000)
    # sysfs also lists subzones at the top level.
    add_zone(root, "intel-rapl:0:0", "core", energy_uj=500_000)
    add_zone(root, "intel-rapl:1", "package-1", energy_uj=2_000_000)
    add_zone(root, "intel-rapl:2", "psys", energy_uj=9_000_000)
    return root


class FakeNVMLError(Exception):
    """Plays pynvml.NVMLError."""


@dataclass
class FakeGpu:
    name: bytes | str
    energy_mj: int = 0
    supports_energy: bool = True


@dataclass
class FakeNvml:
    """A fake NVIDIA driver; ``module`` is what the meter sees in place of pynvml."""

    gpus: list[FakeGpu] = field(default_factory=list)
    init_error: str | None = None
    initialised: int = 0

    def init(self) -> None:
        if self.init_error is not None:
            raise FakeNVMLError(self.init_error)
        self.initialised += 1

    def shutdown(self) -> None:
        self.initialised -= 1

    def handle(self, index: int) -> FakeGpu:
        if not 0 <= index < len(self.gpus):
            raise FakeNVMLError("Invalid Argument")
        return self.gpus[index]

    @staticmethod
    def energy(gpu: FakeGpu) -> int:
        if not gpu.supports_energy:
            raise FakeNVMLError("Not Supported")
        return gpu.energy_mj

    @property
    def module(self) -> Any:
        return SimpleNamespace(
            NVMLError=FakeNVMLError,
            nvmlInit=self.init,
            nvmlShutdown=self.shutdown,
            nvmlDeviceGetCount=lambda: len(self.gpus),
            nvmlDeviceGetHandleByIndex=self.handle,
            nvmlDeviceGetName=lambda gpu: gpu.name,
            nvmlDeviceGetTotalEnergyConsumption=self.energy,
        )
