"""An independent check of a plan against its inventory: the judge the tests and the
conformance suite use, written apart from the placers so that it shares none of their
shortcuts.

Per-core fit and accelerator shares are checked exactly where the plan says which cores and
which device each replica holds (`Placement.cores`, `Placement.accelerator`); a plan that
does not say is given the benefit of a packing search.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

from harmonia.orchestration._cores import assign_cores
from harmonia.orchestration._nodes import Node
from harmonia.orchestration._plan import Placement, Plan, Unplaced
from harmonia.orchestration._services import CONTENTIONS, ServiceRequirement

Hosted = list[tuple[ServiceRequirement, Placement]]


def _devices_fit(capacities: list[int], shares: list[int]) -> bool:
    """Shares onto devices, each whole on one device, largest first to the tightest."""
    free = list(capacities)
    for share in sorted(shares, reverse=True):
        fitting = [i for i, f in enumerate(free) if f >= share]
        if not fitting:
            return False
        free[min(fitting, key=lambda i: free[i])] -= share
    return True


def plan_violations(
    nodes: Sequence[Node], services: Sequence[ServiceRequirement], plan: Plan
) -> list[str]:
    """Everything wrong with ``plan``: replicas missing, twice or unknown, capacities
    exceeded (CPU, memory, per-core, accelerators), anti-affinity, contention sensitivity or
    node selectors broken. Empty when the plan is sound."""
    problems: list[str] = []
    node_by = {n.name: n for n in nodes}
    service_by = {s.name: s for s in services}
    seen: Counter[tuple[str, int]] = Counter()
    items: list[Placement | Unplaced] = [*plan.placements, *plan.unplaced]
    for item in items:
        seen[(item.service, item.replica)] += 1
    for service in services:
        for replica in range(service.replicas):
            count = seen.pop((service.name, replica), 0)
            if count != 1:
                problems.append(f"{service.name} replica {replica} appears {count} times")
    problems.extend(f"unknown replica {s} #{r}" for s, r in seen)
    on_node: dict[str, Hosted] = defaultdict(list)
    for placement in plan.placements:
        node = node_by.get(placement.node)
        hosted = service_by.get(placement.service)
        if node is None:
            problems.append(f"{placement.service} placed on unknown node {placement.node}")
        elif hosted is not None:
            on_node[node.name].append((hosted, placement))
    for name, replicas in on_node.items():
        problems.extend(f"{name}: {p}" for p in _node_violations(node_by[name], replicas))
    return problems


def _cores_violations(node: Node, hosted: Hosted) -> list[str]:
    needing = [(s, p) for s, p in hosted if s.cores]
    if not needing:
        return []
    if any(len(p.cores) != len(s.cores) for s, p in needing):
        if assign_cores(node.cores, [s.cores for s, _ in needing]) is None:
            return ["per-core demands do not fit the cores"]
        return []
    problems = []
    load = [0] * len(node.cores)
    for service, placement in needing:
        if len(set(placement.cores)) != len(placement.cores):
            problems.append(f"{service.name} #{placement.replica} uses a core twice")
        for core, demand in zip(placement.cores, service.cores, strict=True):
            if not 0 <= core < len(load):
                problems.append(f"{service.name} #{placement.replica} on no core {core}")
                continue
            load[core] += demand
    for core, (used, capacity) in enumerate(zip(load, node.cores, strict=True)):
        if used > capacity:
            problems.append(f"core {core}: {used} m exceeds {capacity} m")
    return problems


def _accelerator_violations(node: Node, hosted: Hosted) -> list[str]:
    users = [(s, p) for s, p in hosted if s.accelerator is not None]
    problems = []
    devices = {a.name: a for a in node.accelerators}
    if all(p.accelerator is not None for _, p in users):
        load: Counter[str] = Counter()
        for service, placement in users:
            demand = service.accelerator
            assert demand is not None and placement.accelerator is not None
            device = devices.get(placement.accelerator)
            if device is None or device.type != demand.type:
                problems.append(
                    f"{service.name} #{placement.replica} on no {demand.type} "
                    f"{placement.accelerator!r}"
                )
                continue
            load[device.name] += demand.share
        for name, used in load.items():
            if used > devices[name].capacity:
                problems.append(f"{name}: shares {used} exceed {devices[name].capacity}")
        return problems
    by_type: dict[str, list[int]] = defaultdict(list)
    for service, _ in users:
        assert service.accelerator is not None
        by_type[service.accelerator.type].append(service.accelerator.share)
    for kind, shares in by_type.items():
        capacities = [a.capacity for a in node.accelerators if a.type == kind]
        if not capacities:
            problems.append(f"has no {kind}")
        elif not _devices_fit(capacities, shares):
            problems.append(f"{kind} shares {shares} do not fit devices {capacities}")
    return problems


def _node_violations(node: Node, hosted: Hosted) -> list[str]:
    problems = []
    cpu = sum(s.cpu_millicores for s, _ in hosted)
    if cpu > node.cpu_millicores:
        problems.append(f"CPU {cpu} m exceeds {node.cpu_millicores} m")
    memory = sum(s.memory_mib for s, _ in hosted)
    if memory > node.memory_mib:
        problems.append(f"memory {memory} MiB exceeds {node.memory_mib} MiB")
    problems.extend(_cores_violations(node, hosted))
    problems.extend(_accelerator_violations(node, hosted))
    names = Counter(s.name for s, _ in hosted)
    for s in {s.name: s for s, _ in hosted}.values():
        for other in s.anti_affinity:
            if other == s.name and names[other] > 1:
                problems.append(f"{names[other]} replicas of {other}, which spreads")
            elif other != s.name and names[other] > 0:
                problems.append(f"{s.name} shares the node with {other} (anti-affinity)")
        for key, value in s.node_selector.items():
            if node.labels.get(key) != value:
                problems.append(f"{s.name} needs label {key}={value}")
    for contention in CONTENTIONS:
        sensitive = [s.name for s, _ in hosted if contention in s.sensitivity]
        if len(sensitive) > 1:
            problems.append(f"{len(sensitive)} {contention}-sensitive replicas: {sensitive}")
    return problems
