"""Plugin lookup through Python entry points, MLflow-style: every plugin kind is a group.

Built-in strategies, drift detectors, energy meters, artifact stores (by URI scheme) and
reference systems are registered the same way as a user's own (see ``[project.entry-points]``
in pyproject.toml), so there is one path for both.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points
from typing import Any

from harmonia.core.errors import UnknownPluginError

STRATEGIES = "harmonia.strategies"
DRIFT_DETECTORS = "harmonia.drift_detectors"
ENERGY_METERS = "harmonia.energy_meters"
OBSERVERS = "harmonia.observers"
PLACERS = "harmonia.placers"
SYSTEMS = "harmonia.systems"
ARTIFACT_STORES = "harmonia.artifact_stores"

_KIND = {
    STRATEGIES: "strategy",
    DRIFT_DETECTORS: "drift detector",
    ENERGY_METERS: "energy meter",
    OBSERVERS: "observer",
    PLACERS: "placer",
    SYSTEMS: "system",
    ARTIFACT_STORES: "artifact store",
}


@cache
def _group(group: str) -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=group)}


def plugin_names(group: str) -> list[str]:
    """Names registered in ``group``, sorted."""
    return sorted(_group(group))


def load_plugin(group: str, name: str) -> Any:
    """The class (or factory) registered as ``name`` in ``group``."""
    found = _group(group).get(name)
    if found is None:
        raise UnknownPluginError(_KIND.get(group, group), name, plugin_names(group))
    return found.load()


def create_plugin(group: str, name: str, **params: Any) -> Any:
    """An instance of plugin ``name`` built with ``params``; a bad parameter names itself."""
    factory = load_plugin(group, name)
    try:
        return factory(**params)
    except TypeError as error:
        raise TypeError(f"{_KIND.get(group, group)} {name!r}: {error}") from error
