"""Pick an energy backend: the most direct measurement this machine allows.

Hardware counters beat a model, so ``auto_meter`` tries RAPL, then NVML, then falls back to
the CPU-time estimate, which works everywhere. It returns why each earlier backend was
skipped, so a caller can tell the user how to get a real measurement.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from harmonia.core.errors import EnergyMeterUnavailable
from harmonia.energy._protocol import EnergyMeter
from harmonia.energy.estimate import DEFAULT_WATTS_PER_CORE, EstimateMeter
from harmonia.energy.nvml import NvmlMeter
from harmonia.energy.powercap import DEFAULT_POWERCAP_ROOT, PowercapMeter
from harmonia.plugins import ENERGY_METERS, load_plugin, plugin_names

MeterFactory = Callable[[], EnergyMeter]

DEFAULT_ORDER = ("powercap", "nvml", "estimate")


def first_available(
    candidates: Iterable[tuple[str, MeterFactory]],
) -> tuple[EnergyMeter, list[str]]:
    """The first meter whose factory succeeds, and one note per backend skipped before it.

    Only ``EnergyMeterUnavailable`` means "try the next one"; any other error is a bug or a
    bad parameter and propagates.
    """
    notes: list[str] = []
    for name, factory in candidates:
        try:
            return factory(), notes
        except EnergyMeterUnavailable as error:
            notes.append(f"{name}: {error}")
    raise EnergyMeterUnavailable("no energy backend is usable: " + "; ".join(notes))


def auto_meter(
    *,
    order: Iterable[str] = DEFAULT_ORDER,
    powercap_root: str | Path = DEFAULT_POWERCAP_ROOT,
    nvml_device_index: int | None = None,
    watts_per_core: float = DEFAULT_WATTS_PER_CORE,
    factories: Mapping[str, MeterFactory] | None = None,
) -> tuple[EnergyMeter, list[str]]:
    """The first usable backend in ``order``, and why each earlier one was skipped.

    ``factories`` replaces the constructor of a backend by name (tests pass fakes). With the
    default order the estimate comes last, so a meter is always returned.
    """
    defaults: dict[str, MeterFactory] = {
        "powercap": lambda: PowercapMeter(powercap_root),
        "nvml": lambda: NvmlMeter(device_index=nvml_device_index),
        "estimate": lambda: EstimateMeter(watts_per_core=watts_per_core),
    }
    chosen = {**defaults, **(factories or {})}
    names = list(order)
    unknown = [name for name in names if name not in chosen]
    if unknown:
        raise ValueError(f"unknown energy backend(s) {unknown}; valid: {', '.join(chosen)}")
    return first_available((name, chosen[name]) for name in names)


def get_meter(name: str, **params: Any) -> EnergyMeter:
    """A meter by name: ``"auto"`` (see ``auto_meter``) or a backend registered under the
    ``harmonia.energy_meters`` entry points (built-in or a plugin), built with ``params``.
    """
    if name == "auto":
        meter, notes = auto_meter(**params)
        for note in notes:
            logging.getLogger(__name__).info("energy meter skipped %s", note)
        return meter
    names = plugin_names(ENERGY_METERS)
    if name not in names:
        raise ValueError(f"unknown energy meter {name!r}; valid names: auto, {', '.join(names)}")
    backend: Callable[..., EnergyMeter] = load_plugin(ENERGY_METERS, name)
    return backend(**params)
