"""Harmonia: a self-adaptive, energy-aware control plane for machine-learning services."""

from harmonia.core import *  # noqa: F403 - the core's public API is Harmonia's
from harmonia.core import __all__ as _core_all

__version__ = "0.1.0"
__all__ = [*_core_all, "__version__"]
