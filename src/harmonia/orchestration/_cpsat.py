"""Placement as a CP-SAT model (OR-Tools), in a form that scales.

Replicas of a service are interchangeable, so the model counts them, and so are identical
nodes. The model is over *bins*: ``x[s, b]`` replicas of service ``s`` in bin ``b`` and
``k[b]`` nodes of the bin in use. A bin is either one node (the exact, per-node formulation:
``k[b]`` is 0 or 1) or a whole group of identical nodes (the aggregated formulation, counts
per service per node type, for big clusters: 1,000 nodes of five types are five bins).
Capacities then hold for the group's used nodes together, a relaxation whose plan the caller
fits onto single nodes.

Constraints, per bin and scaled by its nodes in use: CPU, memory and accelerator shares
within capacity (per device, each share whole on one device, when the bin is one node with
several devices); services under anti-affinity never on one node; at most one replica
sensitive to each contention per node; at most as many replicas of a service per node as fit
there alone. Per-core fit is relaxed to linear cuts (`_cores`, `_distinct_cores`).

Objective: the chosen objective, scaled to integers (milliwatts, 1/10,000 of a share) and
rounded down, so that the solver's bound stays a true lower bound; every replica left out
costs more than any plan's objective, so placing replicas comes first. The best heuristic
plan is given as a hint and as a cut (nothing worse is searched).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, Literal

import numpy as np
from ortools.sat.python import cp_model

from harmonia.orchestration._cluster import conflicts
from harmonia.orchestration._cores import alone_count
from harmonia.orchestration._nodes import Node
from harmonia.orchestration._plan import Objective
from harmonia.orchestration._services import CONTENTIONS, ServiceRequirement

#: integer units per objective unit
SCALE: dict[Objective, int] = {"nodes": 1, "energy": 1000, "imbalance": 10_000}
SolveStatus = Literal["optimal", "feasible", "unknown", "infeasible"]
Formulation = Literal["nodes", "types"]
#: (service, node) -> replicas
Counts = dict[tuple[int, int], int]
LinearExpr = cp_model.LinearExpr


@dataclass
class SolveResult:
    """What the solver found: replica counts per (service, bin), the bins (node indices),
    its proven bound on the scaled objective (``penalty`` per replica left out included)."""

    status: SolveStatus
    formulation: Formulation
    bins: list[list[int]]
    counts: dict[tuple[int, int], int]
    #: bin -> nodes of it in use
    in_use: dict[int, int]
    objective: int | None
    bound: int | None
    penalty: int
    scale: int
    #: scaled units the bound may exceed the true optimum by (the imbalance rounds up)
    rounding: int
    wall_s: float
    variables: int = 0
    notes: list[str] = field(default_factory=list)

    def primary_bound(self, unplaced: int) -> float | None:
        """A lower bound on the objective of any plan leaving out ``unplaced`` replicas, in
        objective units; None unless the solver proved that no plan leaves out fewer."""
        if self.bound is None:
            return None
        fewest = -(-(self.bound - self.penalty + 1) // self.penalty)  # ceil
        if max(fewest, 0) < unplaced:
            return None
        primary = max(0, self.bound - self.penalty * unplaced - self.rounding)
        return primary / self.scale


def node_signature(
    node: Node, label_keys: frozenset[str] = frozenset(), power: bool = True
) -> tuple[Any, ...]:
    """What makes two nodes interchangeable for placement: capacities, the labels services
    select on (``label_keys``), and the power model when energy counts."""
    return (
        tuple(node.cores),
        node.cpu_millicores,
        node.memory_mib,
        tuple(sorted((a.type, a.capacity) for a in node.accelerators)),
        tuple(sorted((k, v) for k, v in node.labels.items() if k in label_keys)),
        None if node.power is None or not power else (node.power.idle_w, node.power.peak_w),
    )


def node_groups(
    nodes: Sequence[Node], services: Sequence[ServiceRequirement], objective: Objective
) -> list[list[int]]:
    """Indices of interchangeable nodes, group by group, in order of first appearance."""
    keys = frozenset(k for s in services for k in s.node_selector)
    groups: dict[tuple[Any, ...], list[int]] = defaultdict(list)
    for n, node in enumerate(nodes):
        groups[node_signature(node, keys, objective == "energy")].append(n)
    return list(groups.values())


def alone_bounds(nodes: Sequence[Node], services: Sequence[ServiceRequirement]) -> np.ndarray:
    """Most replicas of each service one node could hold with nothing else on it."""
    cpu = np.array([n.cpu_millicores for n in nodes], dtype=np.int64)
    mem = np.array([n.memory_mib for n in nodes], dtype=np.int64)
    ub = np.zeros((len(services), len(nodes)), dtype=np.int64)
    memo: dict[tuple[tuple[Any, ...], int], int] = {}
    keys = frozenset(k for s in services for k in s.node_selector)
    signatures = [node_signature(node, keys) for node in nodes]
    for s, service in enumerate(services):
        row = np.full(len(nodes), service.replicas, dtype=np.int64)
        if service.cpu_millicores:
            row = np.minimum(row, cpu // service.cpu_millicores)
        if service.memory_mib:
            row = np.minimum(row, mem // service.memory_mib)
        if service.spreads or service.sensitivity:
            row = np.minimum(row, 1)
        for n, node in enumerate(nodes):
            if row[n] == 0:
                continue
            key = (signatures[n], s)
            if key not in memo:
                memo[key] = _alone(node, service, int(row[n]))
            row[n] = min(row[n], memo[key])
        ub[s] = row
    return ub


def _alone(node: Node, service: ServiceRequirement, limit: int) -> int:
    if any(node.labels.get(k) != v for k, v in service.node_selector.items()):
        return 0
    demand = service.accelerator
    if demand is not None:
        room = sum(a.capacity // demand.share for a in node.accelerators if a.type == demand.type)
        limit = min(limit, room)
    if service.cores and limit > 0:
        limit = alone_count(node.cores, service.cores, limit)
    return limit


def _bins(
    groups: list[list[int]], formulation: Formulation
) -> tuple[list[list[int]], list[tuple[int, int]]]:
    """The bins, and pairs of bins (interchangeable single nodes) to use in order."""
    if formulation == "types":
        return groups, []
    position = {}
    bins = [[n] for n in range(sum(map(len, groups)))]
    for b, members in enumerate(bins):
        position[members[0]] = b
    order = [(position[a], position[b]) for g in groups for a, b in pairwise(g)]
    return bins, order


def model_size(alone: np.ndarray) -> int:
    """Count variables of the per-node formulation: pairs a node could host a service
    (``alone``: from `alone_bounds`)."""
    return int(np.count_nonzero(alone))


@dataclass
class _Hint:
    """A feasible plan (replicas per service and node) in the model's terms."""

    counts: Counts  # (service, bin) -> replicas
    nodes: dict[int, int]  # bin -> nodes in use
    hosting: Counts  # (service, bin) -> nodes that run the service
    most: Counts  # (service, bin) -> most replicas of the service on one node


def _hint(hint: Counts, bins: list[list[int]], groups: list[list[int]], single: bool) -> _Hint:
    """The plan over bins. For single-node bins each group of identical nodes has its loads
    moved to its first nodes, to agree with the symmetry breaking."""
    loads: dict[int, dict[int, int]] = defaultdict(dict)
    for (s, n), count in hint.items():
        if count:
            loads[n][s] = count
    if single:
        moved: dict[int, dict[int, int]] = {}
        for members in groups:
            busy = [n for n in members if n in loads]
            for target, source in zip(members, busy, strict=False):
                moved[target] = loads[source]
        loads = defaultdict(dict, moved)  # bins are the nodes themselves
    bin_of = {n: b for b, members in enumerate(bins) for n in members}
    out = _Hint(defaultdict(int), defaultdict(int), defaultdict(int), defaultdict(int))
    for n, load in loads.items():
        b = bin_of[n]
        out.nodes[b] += 1
        for s, count in load.items():
            out.counts[s, b] += count
            out.hosting[s, b] += 1
            out.most[s, b] = max(out.most[s, b], count)
    return out


class PlacementModel:
    """The CP-SAT model of one placement problem, built once and solvable again after
    `forbid` adds cuts."""

    def __init__(
        self,
        nodes: Sequence[Node],
        services: Sequence[ServiceRequirement],
        objective: Objective,
        hint: Counts,
        formulation: Formulation,
        alone: np.ndarray | None = None,
    ) -> None:
        """Build the model over bins, seeded with ``hint`` (a feasible plan's counts per
        node); ``alone`` is `alone_bounds`, when the caller has it."""
        self.nodes = nodes
        self.services = services
        self.objective = objective
        self.formulation = formulation
        self.hint = hint
        self.forbidden = 0
        start = time.perf_counter()
        scale = SCALE[objective]
        groups = node_groups(nodes, services, objective)
        bins, ordered = _bins(groups, formulation)
        single = formulation == "nodes"
        per_node = alone if alone is not None else alone_bounds(nodes, services)
        alone = np.stack([per_node[:, members[0]] for members in bins], axis=1)
        size = np.array([len(m) for m in bins], dtype=np.int64)
        replicas = np.array([s.replicas for s in services], dtype=np.int64)
        ub = np.minimum(alone * size[None, :], replicas[:, None])
        given = _hint(hint, bins, groups, single)
        counts_hint, nodes_hint, hosting_hint = given.counts, given.nodes, given.hosting
        for (s, b), count in counts_hint.items():
            ub[s, b] = max(ub[s, b], count)
            alone[s, b] = max(alone[s, b], given.most[s, b])

        model = cp_model.CpModel()
        x: dict[tuple[int, int], Any] = {}
        here: list[list[int]] = [[] for _ in bins]
        for s, b in zip(*np.nonzero(ub), strict=True):
            s, b = int(s), int(b)
            x[s, b] = model.new_int_var(0, int(ub[s, b]), f"x{s}_{b}")
            here[b].append(s)
        used: list[Any] = [
            (model.new_bool_var(f"k{b}") if single else model.new_int_var(0, int(size[b]), f"k{b}"))
            if here[b]
            else None
            for b in range(len(bins))
        ]
        unplaced = [model.new_int_var(0, s.replicas, f"left{i}") for i, s in enumerate(services)]
        by_service: list[list[Any]] = [[] for _ in services]
        for (s, _), var in x.items():
            by_service[s].append(var)
        for s, service in enumerate(services):
            model.add(LinearExpr.sum(by_service[s]) + unplaced[s] == service.replicas)
        avoid = conflicts(services)
        z = model.new_int_var(0, scale, "peak") if objective == "imbalance" else None
        present_vars: dict[tuple[int, int], Any] = {}

        for b, members in enumerate(bins):
            if not here[b]:
                continue
            node = nodes[members[0]]
            k = used[b]
            xs = [x[s, b] for s in here[b]]
            cpu = [services[s].cpu_millicores for s in here[b]]
            mem = [services[s].memory_mib for s in here[b]]
            for s, var in zip(here[b], xs, strict=True):
                model.add(var <= int(alone[s, b]) * k)
            model.add(LinearExpr.weighted_sum(xs, cpu) <= node.cpu_millicores * k)
            model.add(LinearExpr.weighted_sum(xs, mem) <= node.memory_mib * k)
            if z is not None:
                # the fullest node is at least as full as the bin's nodes on average, and as
                # full as one replica of any service it runs makes a node
                for s, var in zip(here[b], xs, strict=True):
                    alone_share = _share(services[s], node, scale)
                    if alone_share and not single:
                        runs = model.new_bool_var(f"r{s}_{b}")
                        model.add(var <= int(ub[s, b]) * runs)
                        model.add_hint(runs, counts_hint.get((s, b), 0) > 0)
                        model.add(z >= alone_share * runs)
                span = int(size[b])
                if node.cpu_millicores:
                    model.add(
                        LinearExpr.weighted_sum(xs, [scale * c for c in cpu])
                        <= node.cpu_millicores * span * z
                    )
                if node.memory_mib:
                    model.add(
                        LinearExpr.weighted_sum(xs, [scale * m for m in mem])
                        <= node.memory_mib * span * z
                    )

            def present(s: int, b: int = b, k: Any = k) -> Any:
                """How many of the bin's nodes run ``s`` (0 or 1 for a single node)."""
                if (s, b) not in present_vars:
                    if single:
                        var = model.new_bool_var(f"h{s}_{b}")
                    else:
                        var = model.new_int_var(0, int(size[b]), f"h{s}_{b}")
                        model.add(var <= k)
                    model.add(x[s, b] <= int(alone[s, b]) * var)
                    model.add_hint(var, hosting_hint.get((s, b), 0))
                    present_vars[s, b] = var
                return present_vars[s, b]

            _cores(model, node, services, here[b], xs, alone[:, b], k)
            _distinct_cores(model, node, services, here[b], xs, alone[:, b], k, present)
            _accelerators(model, node, services, here[b], x, b, k, single, counts_hint)
            for contention in CONTENTIONS:
                sensitive = [x[s, b] for s in here[b] if contention in services[s].sensitivity]
                if len(sensitive) > 1:
                    model.add(LinearExpr.sum(sensitive) <= k)
            for s in here[b]:
                for t in avoid[s]:
                    if t > s and (t, b) in x:
                        model.add(present(s) + present(t) <= k)
        for a, b in ordered:
            if used[a] is not None and used[b] is not None:
                model.add(used[a] >= used[b])

        primary, penalty, hinted = _objective(
            model, nodes, services, objective, bins, x, used, z, counts_hint, nodes_hint, hint
        )
        total = primary + penalty * LinearExpr.sum(unplaced)
        model.minimize(total)
        for key, var in x.items():
            model.add_hint(var, counts_hint.get(key, 0))
        for b, var in enumerate(used):
            if var is not None:
                model.add_hint(var, nodes_hint.get(b, 0))
        left = [
            service.replicas - sum(c for (s, _), c in counts_hint.items() if s == i)
            for i, service in enumerate(services)
        ]
        for var, value in zip(unplaced, left, strict=True):
            model.add_hint(var, value)
        if hinted is not None and all(v >= 0 for v in left):
            model.add(total <= hinted + penalty * sum(left))  # the hint satisfies it

        self.model = model
        self.x = x
        self.used = used
        self.bins = bins
        self.penalty = penalty
        self.scale = scale
        self.built_s = time.perf_counter() - start

    def forbid(self, node: int, load: dict[int, int]) -> bool:
        """Forbid ``load`` (replicas per service), or more of each, on every node with the
        cores of ``node``: a cut for a load the per-core packing could not fit. Refused
        (False) where the hint has such a load, which was fitted, or for aggregated bins."""
        if self.formulation != "nodes":
            return False
        cores = self.nodes[node].cores
        alike = [n for n, other in enumerate(self.nodes) if other.cores == cores]
        for n in alike:
            if all(self.hint.get((s, n), 0) >= c for s, c in load.items()):
                return False
        for n in alike:
            if not all((s, n) in self.x for s in load):
                continue
            flags = []
            for s, count in load.items():
                flag = self.model.new_bool_var(f"f{self.forbidden}_{s}_{n}")
                self.model.add(self.x[s, n] >= count).only_enforce_if(flag)
                self.model.add(self.x[s, n] <= count - 1).only_enforce_if(~flag)
                flags.append(flag)
            self.model.add(LinearExpr.sum(flags) <= len(flags) - 1)
        self.forbidden += 1
        return True

    def solve(
        self, *, time_limit_s: float, workers: int, seed: int, relative_gap: float
    ) -> SolveResult:
        """Solve (again), within ``time_limit_s``."""
        start = time.perf_counter()
        model, x, used = self.model, self.x, self.used
        solver = cp_model.CpSolver()
        solver.parameters.max_time_in_seconds = max(0.05, time_limit_s)
        solver.parameters.num_workers = workers
        solver.parameters.random_seed = seed
        solver.parameters.relative_gap_limit = relative_gap
        code = solver.solve(model)
        names: dict[Any, SolveStatus] = {
            cp_model.OPTIMAL: "optimal",
            cp_model.FEASIBLE: "feasible",
            cp_model.INFEASIBLE: "infeasible",
        }
        status = names.get(code, "unknown")
        counts: dict[tuple[int, int], int] = {}
        in_use: dict[int, int] = {}
        value = bound = None
        if status in ("optimal", "feasible"):
            for key, var in x.items():
                count = int(solver.value(var))
                if count:
                    counts[key] = count
            for b, var in enumerate(used):
                if var is not None and solver.value(var):
                    in_use[b] = int(solver.value(var))
            value = round(solver.objective_value)
        if status != "infeasible":
            bound = int(np.ceil(solver.best_objective_bound - 1e-6))
        return SolveResult(
            status=status,
            formulation=self.formulation,
            bins=self.bins,
            counts=counts,
            in_use=in_use,
            objective=value,
            bound=bound,
            penalty=self.penalty,
            scale=self.scale,
            rounding=1 if self.objective == "imbalance" else 0,
            wall_s=time.perf_counter() - start,
            variables=len(x),
        )


def _cores(
    model: cp_model.CpModel,
    node: Node,
    services: Sequence[ServiceRequirement],
    here: list[int],
    xs: list[Any],
    alone: np.ndarray,
    k: Any,
) -> None:
    """The linear part of per-core fit. On cores of one capacity C, for each threshold t up
    to C/2, a demand above C - t leaves no room for a demand of t or more on its core; so
    counting such a demand as C, a demand between t and C - t as itself and smaller ones as
    nothing, no core holds more than C (Fekete and Schepers' dual feasible functions), and
    no node more than K * C. t = 0 is the plain sum; t = C/2 counts the demands above half a
    core, each needing a core of its own. On unequal cores only those two hold (with the
    largest core for C)."""
    demands = [services[s].cores for s in here]
    if not any(demands):
        return
    capacity = max(node.cores)
    uniform = min(node.cores) == capacity
    thresholds = {0, capacity // 2} | (
        {d for ds in demands for d in ds if d <= capacity // 2} if uniform else set()
    )
    for t in sorted(thresholds):
        if t == 0:
            weights = [sum(ds) for ds in demands]
            bound = sum(node.cores)
        elif uniform:
            weights = [
                sum(capacity if d > capacity - t else d if d >= t else 0 for d in ds)
                for ds in demands
            ]
            bound = len(node.cores) * capacity
        else:
            weights = [sum(1 for d in ds if d > capacity / 2) for ds in demands]
            bound = len(node.cores)
        if sum(w * int(alone[s]) for w, s in zip(weights, here, strict=True)) > bound:
            model.add(LinearExpr.weighted_sum(xs, weights) <= bound * k)


def _distinct_cores(
    model: cp_model.CpModel,
    node: Node,
    services: Sequence[ServiceRequirement],
    here: list[int],
    xs: list[Any],
    alone: np.ndarray,
    k: Any,
    present: Callable[[int], Any],
) -> None:
    """A replica's demands need distinct cores. On cores of one capacity C, a demand above
    C - t blocks its core for every demand of t or more; so a service whose smallest demand
    is t, with a demands between t and C - t, finds room on a node only if the blocked cores
    leave a free: blocked + a * present(service) <= K per node, summed over the bin's."""
    capacity = max(node.cores)
    if min(node.cores) != capacity:
        return
    count = len(node.cores)
    for s in here:
        demands = services[s].cores
        if not demands or min(demands) > capacity // 2:
            continue
        t = min(demands)
        needed = sum(1 for d in demands if t <= d <= capacity - t)
        blocking = [sum(1 for d in services[r].cores if d > capacity - t) for r in here]
        most = sum(b * int(alone[r]) for b, r in zip(blocking, here, strict=True))
        if needed and most + needed > count:
            blocked = LinearExpr.weighted_sum(xs, blocking)
            model.add(blocked + needed * present(s) <= count * k)


def _device_hint(
    capacities: list[int], shares: list[tuple[int, int, int]]
) -> dict[tuple[int, int], int] | None:
    """Replicas (service, share, count) onto devices, largest share first, each to the
    tightest device; None if that fails (the hint is then left to the solver)."""
    free = list(capacities)
    out: dict[tuple[int, int], int] = defaultdict(int)
    for s, share, count in sorted(shares, key=lambda t: -t[1]):
        for _ in range(count):
            fitting = [d for d, f in enumerate(free) if f >= share]
            if not fitting:
                return None
            d = min(fitting, key=lambda i: free[i])
            free[d] -= share
            out[(s, d)] += 1
    return out


def _accelerators(
    model: cp_model.CpModel,
    node: Node,
    services: Sequence[ServiceRequirement],
    here: list[int],
    x: dict[tuple[int, int], Any],
    b: int,
    k: Any,
    single: bool,
    hint: Counts,
) -> None:
    """Shares within devices: on one node with several devices of a type, an assignment to
    devices (counts per service and device); otherwise a sum per type."""
    by_type: dict[str, list[int]] = defaultdict(list)
    for s in here:
        demand = services[s].accelerator
        if demand is not None:
            by_type[demand.type].append(s)
    for kind, users in by_type.items():
        devices = [a.capacity for a in node.accelerators if a.type == kind]
        shares = [services[s].accelerator.share for s in users]  # type: ignore[union-attr]
        if not single or len(devices) == 1:
            total = LinearExpr.weighted_sum([x[s, b] for s in users], shares)
            model.add(total <= sum(devices) * k)
            continue
        fill = _device_hint(
            devices, [(s, sh, hint.get((s, b), 0)) for s, sh in zip(users, shares, strict=True)]
        )
        per_device: list[list[tuple[Any, int]]] = [[] for _ in devices]
        for s, share in zip(users, shares, strict=True):
            parts = []
            for d, capacity in enumerate(devices):
                if capacity < share:
                    continue
                y = model.new_int_var(0, capacity // share, f"y{s}_{b}_{d}")
                if fill is not None:
                    model.add_hint(y, fill.get((s, d), 0))
                parts.append(y)
                per_device[d].append((y, share))
            model.add(LinearExpr.sum(parts) == x[s, b])
        for d, capacity in enumerate(devices):
            if per_device[d]:
                ys, coeffs = zip(*per_device[d], strict=True)
                model.add(LinearExpr.weighted_sum(list(ys), list(coeffs)) <= capacity)


def _objective(
    model: cp_model.CpModel,
    nodes: Sequence[Node],
    services: Sequence[ServiceRequirement],
    objective: Objective,
    bins: list[list[int]],
    x: dict[tuple[int, int], Any],
    used: list[Any],
    z: Any,
    counts_hint: Counts,
    nodes_hint: dict[int, int],
    hint: Counts,
) -> tuple[Any, int, int | None]:
    """The scaled objective, the penalty per replica left out (more than any plan's
    objective), and the hint's objective in the same units."""
    live = [(b, var) for b, var in enumerate(used) if var is not None]
    if objective == "nodes":
        return (
            LinearExpr.sum([var for _, var in live]),
            len(nodes) + 1,
            sum(nodes_hint.values()),
        )
    if objective == "imbalance":
        if z is None:
            raise ValueError("imbalance needs its peak variable")
        peak = _hint_peak(nodes, services, hint)
        model.add_hint(z, peak)
        return z, SCALE["imbalance"] + 1, peak
    idle: dict[int, int] = {}
    for b, _ in live:
        power = nodes[bins[b][0]].power
        assert power is not None
        idle[b] = int(np.floor(power.idle_w * 1000))
    terms: list[Any] = [var for _, var in live]
    coeffs: list[int] = [idle[b] for b, _ in live]
    dynamic: dict[tuple[int, int], int] = {}
    for (s, b), var in x.items():
        node = nodes[bins[b][0]]
        power = node.power
        assert power is not None
        span = (power.peak_w - power.idle_w) * 1000
        share = services[s].cpu_millicores / node.cpu_millicores if node.cpu_millicores else 0
        dynamic[s, b] = int(np.floor(share * span))
        if dynamic[s, b]:
            terms.append(var)
            coeffs.append(dynamic[s, b])
    ceiling = sum(int(np.ceil(n.power.peak_w * 1000)) for n in nodes if n.power is not None)
    hinted = sum(idle.get(b, 0) * c for b, c in nodes_hint.items()) + sum(
        dynamic.get(key, 0) * c for key, c in counts_hint.items()
    )
    return LinearExpr.weighted_sum(terms, coeffs), ceiling + 1, hinted


def _share(service: ServiceRequirement, node: Node, scale: int) -> int:
    """One replica's dominant share of a node, scaled and rounded up."""
    shares = [0]
    if node.cpu_millicores:
        shares.append(-(-scale * service.cpu_millicores // node.cpu_millicores))
    if node.memory_mib:
        shares.append(-(-scale * service.memory_mib // node.memory_mib))
    return min(max(shares), scale)


def _hint_peak(nodes: Sequence[Node], services: Sequence[ServiceRequirement], hint: Counts) -> int:
    scale = SCALE["imbalance"]
    cpu: dict[int, int] = defaultdict(int)
    mem: dict[int, int] = defaultdict(int)
    for (s, n), count in hint.items():
        cpu[n] += services[s].cpu_millicores * count
        mem[n] += services[s].memory_mib * count
    peak = 0
    for n, node in enumerate(nodes):
        if node.cpu_millicores:
            peak = max(peak, -(-scale * cpu[n] // node.cpu_millicores))
        if node.memory_mib:
            peak = max(peak, -(-scale * mem[n] // node.memory_mib))
    return min(peak, scale)
