"""What is left free on each node while replicas are placed, and why a node cannot take a
replica. Vectorised over nodes (numpy), so that a greedy pass over thousands of replicas and
nodes takes a fraction of a second.

Every check is monotone: once a node rejects a service, placing more replicas anywhere never
makes it accept that service again. Placers rely on this to skip work.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from harmonia.orchestration._cores import cores_fit, fit_cores
from harmonia.orchestration._nodes import Node
from harmonia.orchestration._plan import RejectionKind
from harmonia.orchestration._services import CONTENTIONS, ServiceRequirement

#: the order in which a node's reasons are tried; a node is rejected for the first that fails
KINDS: tuple[RejectionKind, ...] = (
    "accelerator",
    "selector",
    "anti_affinity",
    "sensitivity",
    "cpu",
    "memory",
    "cores",
)
Mask = np.ndarray


def conflicts(services: Sequence[ServiceRequirement]) -> list[list[int]]:
    """For each service, the services (by index) it never shares a node with, both ways."""
    index = {s.name: i for i, s in enumerate(services)}
    avoid: list[set[int]] = [set() for _ in services]
    for i, service in enumerate(services):
        for other in service.anti_affinity:
            j = index.get(other)
            if j is not None:
                avoid[i].add(j)
                avoid[j].add(i)
    return [sorted(a) for a in avoid]


def _short(values: Sequence[int], limit: int = 8) -> str:
    shown = ", ".join(str(v) for v in values[:limit])
    return f"[{shown}{', …' if len(values) > limit else ''}]"


class ClusterState:
    """Free capacity of every node and who runs where, updated by `commit`."""

    def __init__(self, nodes: Sequence[Node], services: Sequence[ServiceRequirement]) -> None:
        self.nodes = list(nodes)
        self.services = list(services)
        count = len(self.nodes)
        self.names = [node.name for node in self.nodes]
        self.cpu_cap = np.array([n.cpu_millicores for n in self.nodes], dtype=np.int64)
        self.mem_cap = np.array([n.memory_mib for n in self.nodes], dtype=np.int64)
        self.cpu_free = self.cpu_cap.copy()
        self.mem_free = self.mem_cap.copy()
        self.core_free = [list(n.cores) for n in self.nodes]
        self.core_count = np.array([len(n.cores) for n in self.nodes], dtype=np.int64)
        self.core_max = np.array([max(n.cores) for n in self.nodes], dtype=np.int64)
        self.core_sum = np.array([sum(n.cores) for n in self.nodes], dtype=np.int64)
        # accelerators of each type: one column per device, -1 where a node has fewer
        self.accel_free: dict[str, np.ndarray] = {}
        for kind in sorted({a.type for n in self.nodes for a in n.accelerators}):
            devices = [[a.capacity for a in n.accelerators if a.type == kind] for n in self.nodes]
            width = max(len(d) for d in devices)
            table = np.full((count, width), -1, dtype=np.int64)
            for i, d in enumerate(devices):
                table[i, : len(d)] = d
            self.accel_free[kind] = table
        # which service holds a node's one contention-sensitive slot, -1 if none
        self.sensitive = {c: np.full(count, -1, dtype=np.int64) for c in CONTENTIONS}
        self.hosted = np.zeros((len(self.services), count), dtype=np.int64)
        self.avoid = conflicts(self.services)
        self.selector_ok = np.array(
            [
                [all(n.labels.get(k) == v for k, v in s.node_selector.items()) for n in self.nodes]
                for s in self.services
            ],
            dtype=bool,
        ).reshape(len(self.services), count)
        # per-core demands largest first, for the quick check
        self.demands = [sorted(s.cores, reverse=True) for s in self.services]
        # per-core fit failed once for (service, node): it fails from then on
        self.cores_blocked = np.zeros((len(self.services), count), dtype=bool)
        self.cpu_ref = max(int(self.cpu_cap.max(initial=0)), 1)
        self.mem_ref = max(int(self.mem_cap.max(initial=0)), 1)

    # -- vector checks -----------------------------------------------------------------------
    def _masks(self, s: int) -> Iterator[tuple[RejectionKind, Mask]]:
        """(kind, nodes that pass it) for service ``s``, in `KINDS` order, computed lazily."""
        service = self.services[s]
        demand = service.accelerator
        if demand is not None:
            table = self.accel_free.get(demand.type)
            if table is None:
                yield "accelerator", np.zeros(len(self.nodes), dtype=bool)
            else:
                yield "accelerator", np.asarray((table >= demand.share).any(axis=1))
        if service.node_selector:
            yield "selector", self.selector_ok[s]
        if self.avoid[s]:
            yield "anti_affinity", self.hosted[self.avoid[s]].sum(axis=0) == 0
        for contention in service.sensitivity:
            yield "sensitivity", self.sensitive[contention] < 0
        yield "cpu", self.cpu_free >= service.cpu_millicores
        yield "memory", self.mem_free >= service.memory_mib
        if service.cores:
            yield (
                "cores",
                (
                    (self.core_count >= len(service.cores))
                    & (self.core_max >= max(service.cores))
                    & (self.core_sum >= sum(service.cores))
                    & ~self.cores_blocked[s]
                ),
            )

    def assess(self, s: int) -> tuple[Mask, list[tuple[RejectionKind, Mask]]]:
        """Nodes that may take a replica of ``s`` (per-core fit still to confirm with
        `cores_fit`), and the nodes rejected for each kind, each node under its first."""
        ok = np.ones(len(self.nodes), dtype=bool)
        rejected: list[tuple[RejectionKind, Mask]] = []
        for kind, passes in self._masks(s):
            bad = ok & ~passes
            if bad.any():
                rejected.append((kind, bad))
                ok &= passes
        return ok, rejected

    def cores_fit(self, s: int, n: int) -> bool:
        """The exact per-core check of a replica of ``s`` on node ``n`` (remembered if not)."""
        demands = self.demands[s]
        if not demands:
            return True
        if not cores_fit(self.core_free[n], demands):
            self.cores_blocked[s, n] = True
            return False
        return True

    def residual(self, s: int) -> np.ndarray:
        """Free capacity each node would keep after a replica of ``s``: CPU and memory, each
        in units of the largest node's, added (the 'free capacity' of best and worst fit)."""
        service = self.services[s]
        return (self.cpu_free - service.cpu_millicores) / self.cpu_ref + (
            self.mem_free - service.memory_mib
        ) / self.mem_ref

    # -- one node ----------------------------------------------------------------------------
    def why_not(self, s: int, n: int, *, cores: bool = True) -> tuple[RejectionKind, str] | None:
        """The first reason node ``n`` cannot take a replica of ``s`` now, with its detail
        (per-core fit left out when ``cores`` is false)."""
        service = self.services[s]
        demand = service.accelerator
        if demand is not None:
            table = self.accel_free.get(demand.type)
            devices = [] if table is None else [int(v) for v in table[n] if v >= 0]
            if not devices:
                return "accelerator", f"has no {demand.type}"
            if max(devices) < demand.share:
                return "accelerator", (
                    f"needs {demand.share} of one {demand.type}, most free on a device is "
                    f"{max(devices)}"
                )
        labels = self.nodes[n].labels
        for key, value in service.node_selector.items():
            if labels.get(key) != value:
                return "selector", f"lacks label {key}={value}"
        for other in self.avoid[s]:
            if self.hosted[other, n] > 0:
                name = self.services[other].name
                if other == s:
                    return "anti_affinity", f"already runs a replica of {name}, which spreads"
                return "anti_affinity", f"runs {name}, which must not share a node with it"
        for contention in service.sensitivity:
            holder = int(self.sensitive[contention][n])
            if holder >= 0:
                return "sensitivity", (
                    f"already runs {self.services[holder].name}, also {contention}-sensitive"
                )
        if self.cpu_free[n] < service.cpu_millicores:
            return "cpu", f"needs {service.cpu_millicores} m CPU, {self.cpu_free[n]} m free"
        if self.mem_free[n] < service.memory_mib:
            return "memory", f"needs {service.memory_mib} MiB, {self.mem_free[n]} MiB free"
        if cores and service.cores and not cores_fit(self.core_free[n], self.demands[s]):
            return "cores", (
                f"per-core demands {_short(service.cores)} do not fit free cores "
                f"{_short(sorted(self.core_free[n], reverse=True))}"
            )
        return None

    def commit(
        self, s: int, n: int, cores: list[int] | None = None, device: str | None = None
    ) -> tuple[list[int], str | None]:
        """Put a replica of ``s`` on ``n`` (on ``cores`` and ``device`` if given, else as
        `fit_cores` and the tightest device fit it); the caller has checked that it fits.
        Returns the cores and the accelerator device taken."""
        service = self.services[s]
        node = self.nodes[n]
        self.cpu_free[n] -= service.cpu_millicores
        self.mem_free[n] -= service.memory_mib
        chosen: list[int] = []
        if service.cores:
            free = self.core_free[n]
            found = cores if cores else fit_cores(free, service.cores)
            if found is None:
                raise ValueError(f"{service.name} does not fit the cores of {node.name}")
            chosen = list(found)
            for core, amount in zip(chosen, service.cores, strict=True):
                free[core] -= amount
            self.core_max[n] = max(free)
            self.core_sum[n] = sum(free)
        demand = service.accelerator
        if demand is not None:
            row = self.accel_free[demand.type][n]
            names = [a.name for a in node.accelerators if a.type == demand.type]
            if device is not None:
                column = names.index(device)
            else:
                fitting = [(int(v), d) for d, v in enumerate(row) if v >= demand.share]
                _, column = min(fitting)  # the tightest device that holds the share
            row[column] -= demand.share
            device = names[column]
        for contention in service.sensitivity:
            self.sensitive[contention][n] = s
        self.hosted[s, n] += 1
        return chosen, device

    def release(self, s: int, n: int, cores: list[int], device: str | None) -> None:
        """Take back a replica of ``s`` from ``n`` (the cores and device `commit` gave it).
        Nodes only ever fill up otherwise; after a release, what node ``n`` rejected is
        judged again."""
        service = self.services[s]
        self.cpu_free[n] += service.cpu_millicores
        self.mem_free[n] += service.memory_mib
        if service.cores:
            free = self.core_free[n]
            for core, amount in zip(cores, service.cores, strict=True):
                free[core] += amount
            self.core_max[n] = max(free)
            self.core_sum[n] = sum(free)
        demand = service.accelerator
        if demand is not None and device is not None:
            names = [a.name for a in self.nodes[n].accelerators if a.type == demand.type]
            self.accel_free[demand.type][n][names.index(device)] += demand.share
        for contention in service.sensitivity:
            if self.sensitive[contention][n] == s:
                self.sensitive[contention][n] = -1
        self.hosted[s, n] -= 1
        self.cores_blocked[:, n] = False
