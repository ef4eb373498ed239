"""Strategies: the Plan of MAPE-K, one protocol, found by name under ``harmonia.strategies``."""

from harmonia.core.strategies.base import (
    Planned,
    Situation,
    Strategy,
    Trigger,
    Violation,
    get_params,
    reuse_or_retrain,
)
from harmonia.core.strategies.harmone import HarmonEStrategy
from harmonia.core.strategies.single import SingleStrategy
from harmonia.core.strategies.switch import SwitchStrategy

__all__ = [
    "HarmonEStrategy",
    "Planned",
    "SingleStrategy",
    "Situation",
    "Strategy",
    "SwitchStrategy",
    "Trigger",
    "Violation",
    "get_params",
    "reuse_or_retrain",
]
