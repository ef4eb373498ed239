"""RAPL energy counters read through the Linux powercap sysfs interface.

Only *package* domains are summed: they already contain the cores and uncore, so adding the
``core``/``uncore`` subzones would count the same joules twice, and ``psys`` (platform) or
``dram`` zones measure something other than the CPU package. Counters wrap at
``max_energy_range_uj``; one wrap per measured block is corrected, which holds for blocks
shorter than the wrap period (a typical 262,143 J range lasts about 20 minutes at 200 W).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from harmonia.core.errors import EnergyMeterUnavailable
from harmonia.energy._protocol import CounterMeter, EnergySource

DEFAULT_POWERCAP_ROOT = Path("/sys/class/powercap")

# A top-level zone is "<control type>:<index>"; subzones add a second ":<index>".
_TOP_LEVEL_ZONE = re.compile(r"^(?P<kind>[^:]+):(?P<index>\d+)$")

_PERMISSION_FIX = (
    "since Linux 5.10 energy_uj is readable only by root (CVE-2020-8694, the PLATYPUS "
    "side channel); to allow it run `sudo chmod o+r /sys/class/powercap/intel-rapl:*/energy_uj` "
    "(repeat after each boot, or add a udev rule that does it), or run as root"
)


@dataclass(frozen=True)
class PackageDomain:
    """One RAPL package zone: where its counter lives and where the counter wraps."""

    zone: str
    name: str
    energy_path: Path
    max_range_uj: int


def counter_delta(start_uj: int, end_uj: int, max_range_uj: int) -> int:
    """Microjoules between two readings of a counter that wraps at ``max_range_uj``."""
    if end_uj >= start_uj:
        return end_uj - start_uj
    return max_range_uj - start_uj + end_uj


def _read_uj(path: Path) -> int:
    """The integer in a sysfs counter file. The only place that reads one."""
    return int(path.read_text().strip())


def _read_checked(path: Path) -> int:
    """``_read_uj``, with an OS error turned into ``EnergyMeterUnavailable`` that says why."""
    try:
        return _read_uj(path)
    except PermissionError as error:
        raise EnergyMeterUnavailable(f"cannot read {path}: {_PERMISSION_FIX}") from error
    except OSError as error:
        raise EnergyMeterUnavailable(f"cannot read {path}: {error}") from error


def _top_level_zones(root: Path) -> list[Path]:
    """Top-level zone directories in index order, MMIO zones last.

    MMIO zones mirror the MSR package counter, so putting them last lets the MSR zone win.
    """
    keyed: list[tuple[tuple[bool, str, int], Path]] = []
    for path in root.iterdir():
        match = _TOP_LEVEL_ZONE.match(path.name)
        if match and path.is_dir():
            kind = match["kind"]
            keyed.append((("mmio" in kind, kind, int(match["index"])), path))
    return [path for _, path in sorted(keyed)]


def discover_packages(root: Path) -> list[PackageDomain]:
    """Package domains under a powercap root, each physical package once, in index order."""
    if not root.is_dir():
        return []
    domains: list[PackageDomain] = []
    seen_names: set[str] = set()
    for zone_dir in _top_level_zones(root):
        name_file = zone_dir / "name"
        if not name_file.is_file():
            continue
        name = name_file.read_text().strip()
        if not name.startswith("package") or name in seen_names:
            continue
        seen_names.add(name)
        domains.append(
            PackageDomain(
                zone=zone_dir.name,
                name=name,
                energy_path=zone_dir / "energy_uj",
                max_range_uj=_read_checked(zone_dir / "max_energy_range_uj"),
            )
        )
    return domains


class PowercapMeter(CounterMeter):
    """Energy of the CPU packages, from the RAPL counters in ``/sys/class/powercap``.

    The constructor reads every counter once, so an unusable machine fails here with
    ``EnergyMeterUnavailable`` (and ``auto_meter`` can move on) rather than mid-measurement.
    """

    source: EnergySource = "rapl"

    def __init__(self, root: str | Path = DEFAULT_POWERCAP_ROOT) -> None:
        self.root = Path(root)
        self.domains = tuple(discover_packages(self.root))
        if not self.domains:
            raise EnergyMeterUnavailable(f"no RAPL package domain under {self.root}")
        self.read()

    @classmethod
    def probe(cls, root: str | Path = DEFAULT_POWERCAP_ROOT) -> str | None:
        """Why this backend cannot be used under ``root``, or None if it can."""
        try:
            cls(root)
        except EnergyMeterUnavailable as error:
            return str(error)
        return None

    @property
    def detail(self) -> str:
        return ", ".join(f"{d.zone} ({d.name})" for d in self.domains)

    def read(self) -> list[int]:
        return [_read_checked(d.energy_path) for d in self.domains]

    def joules_between(self, start: list[int], end: list[int]) -> float:
        micro = sum(
            counter_delta(s, e, d.max_range_uj)
            for s, e, d in zip(start, end, self.domains, strict=True)
        )
        return micro / 1e6
