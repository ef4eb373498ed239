"""First fit, best fit and worst fit, in their classical meanings, over replicas with ROHE's
per-core fit, accelerators, anti-affinity and contention sensitivity.

Each replica goes to a node that can take it now; which one is the rule's choice:

- ``first-fit``: the first such node in inventory order;
- ``best-fit``: the one left with the *least* free capacity afterwards (it packs tight);
- ``worst-fit``: the one left with the *most* (it spreads the load).

Free capacity is CPU plus memory left, each in units of the largest node's, so that a big
node with half its capacity free counts as roomier than a small empty one. ROHE ranks the
other way round under these names; these are the textbook meanings.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import ClassVar

from harmonia.orchestration._assemble import make_plan
from harmonia.orchestration._cluster import ClusterState
from harmonia.orchestration._explain import ExplanationLog
from harmonia.orchestration._greedy import ORDERS, WHY, Order, Rule, all_replicas, place_replicas
from harmonia.orchestration._inventory import check_inventory
from harmonia.orchestration._nodes import Node
from harmonia.orchestration._plan import Objective, Plan
from harmonia.orchestration._services import ServiceRequirement


class GreedyPlacer:
    """Shared body of the three rules; ``objective`` is only measured and reported."""

    name: ClassVar[str]
    rule: ClassVar[Rule]

    def __init__(self, objective: Objective = "nodes", order: Order = "decreasing") -> None:
        self.objective = objective
        self.order = order

    def place(self, nodes: Sequence[Node], services: Sequence[ServiceRequirement]) -> Plan:
        if self.order not in ORDERS:
            raise ValueError(f"order is {self.order!r}, not one of {', '.join(ORDERS)}")
        check_inventory(nodes, services, self.objective)
        start = time.perf_counter()
        state = ClusterState(nodes, services)
        log = ExplanationLog(state, WHY[self.rule])
        items = all_replicas(state, self.order)
        placements, unplaced, _ = place_replicas(state, items, self.rule, log)
        return make_plan(
            placer=self.name,
            status="heuristic",
            objective=self.objective,
            nodes=nodes,
            services=services,
            placements=placements,
            unplaced=unplaced,
            explanations=log.explanations(),
            seconds=time.perf_counter() - start,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(objective={self.objective!r}, order={self.order!r})"


class FirstFitPlacer(GreedyPlacer):
    """Each replica to the first node, in inventory order, that can take it."""

    name = "first-fit"
    rule = "first"


class BestFitPlacer(GreedyPlacer):
    """Each replica to the node that can take it and is left with the least free capacity."""

    name = "best-fit"
    rule = "best"


class WorstFitPlacer(GreedyPlacer):
    """Each replica to the node that can take it and is left with the most free capacity."""

    name = "worst-fit"
    rule = "worst"
