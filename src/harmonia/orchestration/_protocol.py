"""The `Placer` protocol: what every placement algorithm, built in or a user's plugin
(entry-point group ``harmonia.placers``), provides."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Protocol, runtime_checkable

from harmonia.orchestration._nodes import Node
from harmonia.orchestration._plan import Objective, Plan
from harmonia.orchestration._services import ServiceRequirement


@runtime_checkable
class Placer(Protocol):
    """Places every replica of ``services`` on ``nodes``, or says why it cannot.

    As scikit-learn's estimators: the constructor only stores its parameters (an
    ``objective`` at least, the one the placer minimises or reports), and `place` is pure —
    it reads its arguments, returns a `Plan` and changes nothing. Invalid inputs raise
    `InventoryError`; a replica that fits nowhere is an `Unplaced` entry, not an error.
    The public conformance suite (`harmonia.testing.check_placer`) checks all of this.

    >>> from harmonia.orchestration import FirstFitPlacer, Node, ServiceRequirement
    >>> nodes = [Node(name="a", cores=2, memory_mib=1024)]
    >>> plan = FirstFitPlacer().place(nodes, [ServiceRequirement(name="web", cores=[500])])
    >>> [(p.service, p.replica, p.node) for p in plan.placements]
    [('web', 0, 'a')]
    """

    name: ClassVar[str]

    def place(self, nodes: Sequence[Node], services: Sequence[ServiceRequirement]) -> Plan:
        """A plan for ``services`` on ``nodes``."""
        ...


def create_placer(
    name: str, objective: Objective, time_limit_s: float | None = None
) -> tuple[Placer, bool]:
    """Placer ``name`` (a ``harmonia.placers`` plugin) for ``objective``, given
    ``time_limit_s`` when it takes one; the flag says whether it did. An unknown placer raises
    `LookupError`, settings it refuses `TypeError` or `ValueError`."""
    import inspect

    from harmonia.plugins import PLACERS, create_plugin, load_plugin

    factory = load_plugin(PLACERS, name)
    params: dict[str, object] = {"objective": objective}
    limited = time_limit_s is not None and "time_limit_s" in inspect.signature(factory).parameters
    if limited:
        params["time_limit_s"] = time_limit_s
    placer: Placer = create_plugin(PLACERS, name, **params)
    return placer, limited
