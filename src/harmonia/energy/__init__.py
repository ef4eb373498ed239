"""Energy measurement of blocks of work: RAPL counters, NVML counters, or a CPU-time model.

Every backend satisfies the ``EnergyMeter`` protocol and labels its readings with their
``source``; ``auto_meter`` picks the most direct one this machine allows.
"""

from harmonia.energy._protocol import EnergyMeter, EnergyReading, EnergySource, Measurement
from harmonia.energy.auto import auto_meter, get_meter
from harmonia.energy.estimate import DEFAULT_WATTS_PER_CORE, EstimateMeter
from harmonia.energy.nvml import NvmlMeter
from harmonia.energy.per_call import measure_per_call
from harmonia.energy.powercap import PowercapMeter

__all__ = [
    "DEFAULT_WATTS_PER_CORE",
    "EnergyMeter",
    "EnergyReading",
    "EnergySource",
    "EstimateMeter",
    "Measurement",
    "NvmlMeter",
    "PowercapMeter",
    "auto_meter",
    "get_meter",
    "measure_per_call",
]
