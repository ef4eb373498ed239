"""Explanations per service, kept small however big the cluster: rejections are counted by
kind, and only a few chosen nodes and a few examples of each kind are kept with details."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import cast

import numpy as np

from harmonia.orchestration._cluster import ClusterState
from harmonia.orchestration._plan import Explanation, Rejection, RejectionKind, UnplacedKind

#: examples kept per rejection kind and service
MAX_EXAMPLES = 3
#: chosen nodes listed per service
MAX_NODES = 5
#: nodes looked at for differing examples of why a replica fits nowhere
SCANNED = 50


class ExplanationLog:
    """Collects, for each service, where its replicas went and which nodes were turned down."""

    def __init__(self, state: ClusterState, why: str) -> None:
        self.state = state
        self.why = why
        count = len(state.services)
        self.chosen: list[Counter[str]] = [Counter() for _ in range(count)]
        self.unplaced = [0] * count
        self.rejected: list[Counter[RejectionKind]] = [Counter() for _ in range(count)]
        self.examples: list[list[Rejection]] = [[] for _ in range(count)]

    def _want(self, s: int, kind: RejectionKind) -> int:
        have = sum(1 for e in self.examples[s] if e.kind == kind)
        return MAX_EXAMPLES - have

    def reject(self, s: int, kind: RejectionKind, nodes: np.ndarray) -> None:
        """Nodes (a mask or indices) turned down for ``kind``; details come from the state
        as it is now, so call this before committing the replica."""
        indices = np.flatnonzero(nodes) if nodes.dtype == bool else nodes
        if len(indices) == 0:
            return
        self.rejected[s][kind] += len(indices)
        for n in indices[: self._want(s, kind)]:
            found = self.state.why_not(s, int(n))
            detail = found[1] if found is not None and found[0] == kind else kind
            self.examples[s].append(Rejection(node=self.state.names[n], kind=kind, detail=detail))

    def not_chosen(self, s: int, nodes: np.ndarray, detail: Callable[[int], str]) -> None:
        """Nodes that fitted but lost to the chosen one; ``detail(n)`` says why."""
        if len(nodes) == 0:
            return
        self.rejected[s]["not_chosen"] += len(nodes)
        for n in nodes[: self._want(s, "not_chosen")]:
            self.examples[s].append(
                Rejection(node=self.state.names[n], kind="not_chosen", detail=detail(int(n)))
            )

    def placed(self, s: int, n: int) -> None:
        self.chosen[s][self.state.names[n]] += 1

    def left_out(self, s: int) -> None:
        self.unplaced[s] += 1

    def explanations(self) -> list[Explanation]:
        result = []
        for s, service in enumerate(self.state.services):
            chosen = self.chosen[s]
            listed = dict(chosen.most_common(MAX_NODES))
            order = {kind: i for i, kind in enumerate(("not_chosen", *_KIND_ORDER))}
            examples = sorted(self.examples[s], key=lambda e: order.get(e.kind, 99))
            result.append(
                Explanation(
                    service=service.name,
                    placed=sum(chosen.values()),
                    unplaced=self.unplaced[s],
                    why=self.why,
                    nodes=listed,
                    more_nodes=len(chosen) - len(listed),
                    rejected=dict(sorted(self.rejected[s].items())),
                    examples=examples,
                )
            )
        return result


_KIND_ORDER: tuple[RejectionKind, ...] = (
    "accelerator",
    "selector",
    "anti_affinity",
    "sensitivity",
    "cpu",
    "memory",
    "cores",
)


def unplaced_reason(
    state: ClusterState, s: int, rejected: list[tuple[RejectionKind, np.ndarray]]
) -> tuple[str, UnplacedKind]:
    """Why no node could take a replica of ``s``: the kinds with counts and one example
    each, and the most common kind."""
    if not state.nodes:
        return "the inventory has no nodes", "no_nodes"
    counts = [(kind, int(np.count_nonzero(mask)), mask) for kind, mask in rejected]
    counts = [c for c in counts if c[1] > 0]
    if not counts:  # nothing was vector-rejected: the per-core fit failed everywhere
        return "no node has free cores that fit its per-core demands", "cores"
    parts = []
    for kind, number, mask in counts:
        examples: dict[str, str] = {}  # detail -> node: the first node of each distinct detail
        for n in np.flatnonzero(mask)[:SCANNED]:
            found = state.why_not(s, int(n))
            detail = found[1] if found is not None else ""
            examples.setdefault(detail, state.names[n])
            if len(examples) == 2:
                break
        shown = "; ".join(f"{name} {detail}".strip() for detail, name in examples.items())
        parts.append(f"{kind} on {number} node(s), e.g. {shown}")
    top = max(counts, key=lambda c: c[1])[0]
    return "no node can take it: " + "; ".join(parts), cast(UnplacedKind, top)
