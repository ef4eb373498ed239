"""The result of placement: which replica goes on which node, what could not be placed and
why, the objective reached, and an explanation per service.

A `Plan` is plain data (pydantic, JSON round-trip), so that whatever consumes it — the CLI,
the Kubernetes renderer, the dashboard — needs nothing of the placer that made it.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

#: what a placer minimises (the optimal one) or reports (the heuristics)
Objective = Literal["nodes", "energy", "imbalance"]
OBJECTIVES: tuple[Objective, ...] = ("nodes", "energy", "imbalance")
#: units of each objective's value
UNITS: dict[Objective, str] = {"nodes": "nodes", "energy": "W", "imbalance": "share"}

#: why a node was not chosen for a replica. ``cpu``, ``memory`` and ``cores`` (per-core fit)
#: are the capacity reasons; ``not_chosen`` means it fitted but the placer preferred another.
RejectionKind = Literal[
    "accelerator",
    "selector",
    "anti_affinity",
    "sensitivity",
    "cpu",
    "memory",
    "cores",
    "not_chosen",
]
#: why a replica was left out: the most common rejection, or ``no_nodes`` with no inventory
UnplacedKind = Literal[
    "accelerator",
    "selector",
    "anti_affinity",
    "sensitivity",
    "cpu",
    "memory",
    "cores",
    "no_nodes",
]
#: ``heuristic``: a greedy rule's plan; ``optimal``: proven optimal by the solver;
#: ``feasible``: the solver's best plan within its time limit, ``gap`` says how far from proven
PlanStatus = Literal["heuristic", "optimal", "feasible"]


class Placement(BaseModel):
    """Replica ``replica`` (0-based) of ``service`` runs on ``node``.

    ``cores`` are the node's cores (indices into its ``cores``) that hold the service's
    per-core demands, one for each, in order; ``accelerator`` is the device (its name on the
    node) that gives the replica its share. Both are what makes the fit checkable, and what a
    renderer needs to pin a replica; neither is needed to read the plan.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    service: str
    replica: int = Field(ge=0)
    node: str
    cores: list[int] = Field(default_factory=list)
    accelerator: str | None = None


class Unplaced(BaseModel):
    """A replica no node could take; ``reason`` says why in words, ``kind`` in one term."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    service: str
    replica: int = Field(ge=0)
    reason: str
    kind: UnplacedKind


class Rejection(BaseModel):
    """One example of a node turned down for a service, and why."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    node: str
    kind: RejectionKind
    detail: str


class Explanation(BaseModel):
    """Why a service's replicas went where they went, bounded in size for big clusters.

    ``nodes`` lists at most a few chosen nodes with their replica counts (``more_nodes``
    counts the rest); ``rejected`` counts node rejections by kind, summed over the decisions
    for its replicas; ``examples`` holds a few rejections of each kind.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    service: str
    placed: int = Field(ge=0)
    unplaced: int = Field(ge=0)
    why: str
    nodes: dict[str, int] = Field(default_factory=dict)
    more_nodes: int = Field(default=0, ge=0)
    rejected: dict[RejectionKind, int] = Field(default_factory=dict)
    examples: list[Rejection] = Field(default_factory=list)


class ObjectiveValue(BaseModel):
    """The objective a plan was judged by: its ``value`` and, from a solver, the proven
    lower ``bound`` (no plan can do better), in ``unit``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Objective
    value: float
    bound: float | None = None
    unit: str


class Plan(BaseModel):
    """Where every replica goes. Every replica of every service appears exactly once, in
    ``placements`` or in ``unplaced``.

    ``gap`` is ``(value - bound) / value`` (0 when proven optimal, None without a bound);
    ``seconds`` is how long the placer took; ``notes`` say what happened on the way (a
    time limit hit, a heuristic plan kept).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    placer: str
    status: PlanStatus
    objective: ObjectiveValue
    gap: float | None = None
    placements: list[Placement] = Field(default_factory=list)
    unplaced: list[Unplaced] = Field(default_factory=list)
    explanations: list[Explanation] = Field(default_factory=list)
    seconds: float = Field(default=0.0, ge=0)
    notes: list[str] = Field(default_factory=list)

    def by_node(self) -> dict[str, list[Placement]]:
        """Placements grouped by node, in placement order."""
        grouped: dict[str, list[Placement]] = defaultdict(list)
        for placement in self.placements:
            grouped[placement.node].append(placement)
        return dict(grouped)

    @property
    def nodes_used(self) -> list[str]:
        """Nodes that run at least one replica, in first-use order."""
        return list(dict.fromkeys(p.node for p in self.placements))
