"""Typed errors of orchestration: a bad inventory names every bad field."""

from __future__ import annotations

from harmonia.core.errors import DocumentError, HarmoniaError


class InventoryError(DocumentError, ValueError):
    """Nodes or service requirements are invalid; ``issues`` name each field (``nodes.2.cores``).

    Raised before any placement starts, so that nothing is planned against half an inventory.
    """

    kind = "inventory"


class SolverUnavailable(HarmoniaError, RuntimeError):
    """The optimal placer's solver is not installed; the message says how to install it."""
