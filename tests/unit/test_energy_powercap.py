"""PowercapMeter over fake sysfs trees laid out like the kernel's."""

from __future__ import annotations

from pathlib import Path

import pytest
from energy_fakes import MAX_RANGE_UJ, add_zone, intel_tree, set_energy
from hypothesis import given
from hypothesis import strategies as st

from harmonia.core.errors import EnergyMeterUnavailable
from harmonia.energy import EnergyMeter, PowercapMeter
from harmonia.energy.powercap import counter_delta


def test_reads_only_package_domains(tmp_path: Path) -> None:
    meter = PowercapMeter(intel_tree(tmp_path))
    assert [d.zone for d in meter.domains] == ["intel-rapl:0", "intel-rapl:1"]
    assert isinstance(meter, EnergyMeter)
    assert meter.source == "rapl"


def test_delta_of_one_package(tmp_path: Path) -> None:
    add_zone(tmp_path, "intel-rapl:0", "package-0", energy_uj=1_000_000)
    meter = PowercapMeter(tmp_path)
    with meter.measure() as m:
        assert m.reading is None
        set_energy(tmp_path, "intel-rapl:0", 3_500_000)
    assert m.reading is not None
    assert m.joules == pytest.approx(2.5)
    assert m.reading.source == "rapl"
    assert m.reading.seconds >= 0
    assert "intel-rapl:0" in m.reading.detail


def test_wrap_around(tmp_path: Path) -> None:
    add_zone(tmp_path, "intel-rapl:0", "package-0", energy_uj=999_000_000, max_range_uj=10**9)
    meter = PowercapMeter(tmp_path)
    with meter.measure() as m:
        set_energy(tmp_path, "intel-rapl:0", 2_000_000)
    # 1 J to reach the wrap point, then 2 J after it.
    assert m.joules == pytest.approx(3.0)


def test_packages_are_summed_and_other_zones_ignored(tmp_path: Path) -> None:
    intel_tree(tmp_path)
    meter = PowercapMeter(tmp_path)
    with meter.measure() as m:
        set_energy(tmp_path, "intel-rapl:0", 2_000_000)  # +1 J
        set_energy(tmp_path, "intel-rapl:1", 4_000_000)  # +2 J
        set_energy(tmp_path, "intel-rapl:0:0", 90_000_000)  # core subzone: ignored
        set_energy(tmp_path, "intel-rapl:2", 90_000_000)  # psys: ignored
    assert m.joules == pytest.approx(3.0)
    assert m.reading is not None
    assert "intel-rapl:0 (package-0)" in m.reading.detail
    assert "intel-rapl:1 (package-1)" in m.reading.detail


def test_amd_zones(tmp_path: Path) -> None:
    add_zone(tmp_path, "amd-rapl:0", "package-0", energy_uj=10)
    meter = PowercapMeter(tmp_path)
    with meter.measure() as m:
        set_energy(tmp_path, "amd-rapl:0", 1_000_010)
    assert m.joules == pytest.approx(1.0)
    assert [d.zone for d in meter.domains] == ["amd-rapl:0"]


def test_mmio_mirror_of_a_package_is_not_counted_twice(tmp_path: Path) -> None:
    add_zone(tmp_path, "intel-rapl-mmio:0", "package-0")
    add_zone(tmp_path, "intel-rapl:0", "package-0")
    assert [d.zone for d in PowercapMeter(tmp_path).domains] == ["intel-rapl:0"]


def test_zones_in_numeric_order(tmp_path: Path) -> None:
    for index in (10, 2):
        add_zone(tmp_path, f"intel-rapl:{index}", f"package-{index}")
    assert [d.zone for d in PowercapMeter(tmp_path).domains] == ["intel-rapl:2", "intel-rapl:10"]


def test_reading_is_set_when_the_block_raises(tmp_path: Path) -> None:
    add_zone(tmp_path, "intel-rapl:0", "package-0", energy_uj=0)
    meter = PowercapMeter(tmp_path)
    with pytest.raises(KeyError), meter.measure() as m:
        set_energy(tmp_path, "intel-rapl:0", 4_000_000)
        raise KeyError("boom")
    assert m.joules == pytest.approx(4.0)


@pytest.mark.parametrize("layout", ["missing", "empty", "no_package"])
def test_no_package_domain(tmp_path: Path, layout: str) -> None:
    root = tmp_path / "powercap"
    if layout != "missing":
        root.mkdir()
    if layout == "no_package":
        add_zone(root, "intel-rapl:0", "psys")
        add_zone(root, "intel-rapl:0:0", "core")
    with pytest.raises(EnergyMeterUnavailable, match="no RAPL package domain under") as info:
        PowercapMeter(root)
    assert str(root) in str(info.value)
    assert PowercapMeter.probe(root) == str(info.value)


def test_probe_of_a_usable_tree(tmp_path: Path) -> None:
    assert PowercapMeter.probe(intel_tree(tmp_path)) is None


def test_permission_denied_explains_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_zone(tmp_path, "intel-rapl:0", "package-0")
    real_read_text = Path.read_text

    # Tests may run as root, where chmod 000 does not block reads: fake the kernel's refusal.
    def read_text(self: Path, *args: object, **kwargs: object) -> str:
        if self.name == "energy_uj":
            raise PermissionError(13, "Permission denied", str(self))
        return real_read_text(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "read_text", read_text)
    with pytest.raises(EnergyMeterUnavailable) as info:
        PowercapMeter(tmp_path)
    message = str(info.value)
    assert "sudo chmod o+r /sys/class/powercap/intel-rapl:*/energy_uj" in message
    assert "CVE-2020-8694" in message
    assert "5.10" in message
    assert isinstance(info.value.__cause__, PermissionError)


def test_unreadable_counter_is_unavailable(tmp_path: Path) -> None:
    zone = add_zone(tmp_path, "intel-rapl:0", "package-0")
    (zone / "energy_uj").unlink()
    with pytest.raises(EnergyMeterUnavailable, match="energy_uj"):
        PowercapMeter(tmp_path)


@given(
    max_range=st.integers(min_value=1, max_value=2**63),
    data=st.data(),
)
def test_counter_delta_undoes_one_wrap(max_range: int, data: st.DataObject) -> None:
    start = data.draw(st.integers(min_value=0, max_value=max_range))
    end = data.draw(st.integers(min_value=0, max_value=max_range))
    delta = counter_delta(start, end, max_range)
    assert 0 <= delta <= max_range
    assert (start + delta) % max_range == end % max_range


def test_counter_delta_without_wrap_is_a_difference() -> None:
    assert counter_delta(5, 12, MAX_RANGE_UJ) == 7
