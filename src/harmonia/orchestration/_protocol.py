"""The `Placer` protocol: what every placement algorithm, built in or a user's plugin
(entry-point group ``harmonia.placers``), provides."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Protocol, runtime_checkable

from harmonia.orchestration._nodes import Node
from harmonia.orchestration._plan import Plan
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
