"""The drift protocol, defined in `harmonia.core.drift` (the engine needs it) and re-exported."""

from harmonia.core.drift import DriftDetector, DriftScore, as_1d

__all__ = ["DriftDetector", "DriftScore", "as_1d"]
