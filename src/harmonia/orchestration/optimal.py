"""The optimal placer: CP-SAT (OR-Tools) minimising nodes used, energy or imbalance, under
every constraint the heuristics obey, within a time limit, with the proven gap.

It first runs first-, best- and worst-fit and hands the best of their plans to the solver
as a hint and as a cut (the solver only looks for plans at least as good). Small clusters
get the exact per-node model; big ones (more than `PER_NODE_LIMIT` service-node pairs) the
aggregated one, counts per service per node type. The solver's counts are then fitted onto
nodes core by core (`_fitting`), and a replica that does not fit where the relaxed model put
it goes to another node; with the per-node model, a node load that could not be fitted is cut
off and the model solved again while time lasts. Last, lightly loaded nodes are emptied into
the others where that pays (`_improve`). The plan returned is never worse than the best
heuristic's: fewer replicas left out, or as many and an objective no higher.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np

from harmonia.orchestration._assemble import make_plan, relative_gap
from harmonia.orchestration._cluster import ClusterState
from harmonia.orchestration._errors import SolverUnavailable
from harmonia.orchestration._explain import ExplanationLog
from harmonia.orchestration._fitting import fit_counts, unfitted
from harmonia.orchestration._improve import consolidate
from harmonia.orchestration._inventory import check_inventory
from harmonia.orchestration._nodes import Node
from harmonia.orchestration._objectives import better
from harmonia.orchestration._plan import Objective, Placement, Plan, Unplaced
from harmonia.orchestration._services import ServiceRequirement
from harmonia.orchestration.heuristics import BestFitPlacer, FirstFitPlacer, WorstFitPlacer

if TYPE_CHECKING:  # the solver's module imports ortools, an extra
    from harmonia.orchestration._cpsat import PlacementModel, SolveResult

Formulation = Literal["auto", "nodes", "types"]
FORMULATIONS: tuple[Formulation, ...] = ("auto", "nodes", "types")
#: service-node pairs up to which ``auto`` takes the exact per-node model
PER_NODE_LIMIT = 4000
#: part of the time limit kept for fitting the solver's plan and explaining it
DECODE_SHARE = 0.15
#: most solver workers when none are asked for
MAX_WORKERS = 8
_HEURISTICS = (FirstFitPlacer, BestFitPlacer, WorstFitPlacer)


def _key(plan: Plan) -> tuple[int, float]:
    return len(plan.unplaced), plan.objective.value


class OptimalPlacer:
    """CP-SAT placement. ``time_limit_s`` bounds the whole call (heuristics, model, solve,
    fitting); ``workers`` are the solver's threads (default: the CPUs, at most 8);
    ``relative_gap`` stops the search once the plan is proven that close to optimal;
    ``formulation`` picks the per-node model, the per-node-type one, or (``auto``) by size.
    """

    name: ClassVar[str] = "optimal"

    def __init__(
        self,
        objective: Objective = "nodes",
        time_limit_s: float = 10.0,
        workers: int | None = None,
        seed: int = 0,
        relative_gap: float = 1e-4,
        formulation: Formulation = "auto",
    ) -> None:
        self.objective = objective
        self.time_limit_s = time_limit_s
        self.workers = workers
        self.seed = seed
        self.relative_gap = relative_gap
        self.formulation = formulation

    def __repr__(self) -> str:
        return (
            f"OptimalPlacer(objective={self.objective!r}, time_limit_s={self.time_limit_s}, "
            f"workers={self.workers}, seed={self.seed}, relative_gap={self.relative_gap}, "
            f"formulation={self.formulation!r})"
        )

    def _check_parameters(self) -> None:
        if not self.time_limit_s > 0:
            raise ValueError(f"time_limit_s must be positive, not {self.time_limit_s}")
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"workers must be at least 1, not {self.workers}")
        if not 0 <= self.relative_gap < 1:
            raise ValueError(f"relative_gap must be in [0, 1), not {self.relative_gap}")
        if self.formulation not in FORMULATIONS:
            raise ValueError(
                f"formulation is {self.formulation!r}, not one of {', '.join(FORMULATIONS)}"
            )

    def place(self, nodes: Sequence[Node], services: Sequence[ServiceRequirement]) -> Plan:
        self._check_parameters()
        check_inventory(nodes, services, self.objective)
        solver = _solver_module()
        start = time.perf_counter()
        deadline = start + self.time_limit_s
        heuristic = min((p(self.objective).place(nodes, services) for p in _HEURISTICS), key=_key)
        if not nodes or sum(s.replicas for s in services) == 0:
            return self._finish(heuristic, heuristic.objective.value, "optimal", [], start)
        alone = solver.alone_bounds(nodes, services)
        formulation = self.formulation
        if formulation == "auto":
            formulation = "nodes" if solver.model_size(alone) <= PER_NODE_LIMIT else "types"
        if deadline - time.perf_counter() < max(0.1, 0.05 * self.time_limit_s):
            note = f"the time limit went on the heuristics; kept the {heuristic.placer} plan"
            return self._finish(heuristic, None, None, [note], start)
        hint = _counts(nodes, services, heuristic.placements)
        model = solver.PlacementModel(nodes, services, self.objective, hint, formulation, alone)
        search = self._search(model, nodes, services, deadline, start)
        notes = search.notes()
        chosen = search.solved
        if chosen is None or better(_key(heuristic), _key(chosen)):
            reason = "none from the solver" if chosen is None else "the solver's was not better"
            notes.append(f"kept the {heuristic.placer} plan: {reason}")
            chosen = heuristic
        if time.perf_counter() < deadline:
            placements, emptied = consolidate(
                nodes, services, list(chosen.placements), self.objective, deadline
            )
            improved = self._plan(nodes, services, placements, list(chosen.unplaced), start)
            if emptied and better(_key(improved), _key(chosen)):
                notes.append(f"consolidation emptied {emptied} node(s)")
                chosen = improved
        proven = search.proves(chosen)
        bound = search.bound(len(chosen.unplaced))
        return self._finish(chosen, bound, "optimal" if proven else None, notes, start)

    def _search(
        self,
        model: PlacementModel,
        nodes: Sequence[Node],
        services: Sequence[ServiceRequirement],
        deadline: float,
        start: float,
    ) -> _Search:
        """Solve, fit the counts onto nodes, and (per-node formulation) cut off loads the
        per-core packing cannot fit and solve again, while time lasts."""
        search = _Search(model.formulation, self.workers or min(MAX_WORKERS, os.cpu_count() or 1))
        while True:
            left = (deadline - time.perf_counter()) * (1 - DECODE_SHARE)
            result = model.solve(
                time_limit_s=max(left, 0.05),
                workers=search.workers,
                seed=self.seed,
                relative_gap=self.relative_gap,
            )
            search.results.append(result)
            if result.counts:
                plan, moved = self._decode(nodes, services, result, start)
                if search.solved is None or better(_key(plan), _key(search.solved)):
                    search.solved, search.moved = plan, moved
            unfit = unfitted(nodes, services, result.counts) if model.formulation == "nodes" else []
            if not unfit or deadline - time.perf_counter() < 0.2 * self.time_limit_s:
                break
            added = [model.forbid(n, load) for n, load in unfit]  # every one, no short cut
            if not any(added):
                break
        search.forbidden = model.forbidden
        return search

    def _finish(
        self,
        plan: Plan,
        bound: float | None,
        status: str | None,
        notes: list[str],
        start: float,
    ) -> Plan:
        gap = relative_gap(plan.objective.value, bound)
        if status is None:
            status = "optimal" if gap is not None and gap <= 1e-9 else "feasible"
        return plan.model_copy(
            update={
                "placer": self.name,
                "status": status,
                "objective": plan.objective.model_copy(update={"bound": bound}),
                "gap": gap,
                "seconds": round(time.perf_counter() - start, 6),
                "notes": notes,
            }
        )

    def _decode(
        self,
        nodes: Sequence[Node],
        services: Sequence[ServiceRequirement],
        result: SolveResult,
        start: float,
    ) -> tuple[Plan, int]:
        """The solver's counts as a plan, and how many replicas went elsewhere than the
        model said."""
        placements, unplaced, moved = fit_counts(nodes, services, result, self.objective)
        return self._plan(nodes, services, placements, unplaced, start), moved

    def _plan(
        self,
        nodes: Sequence[Node],
        services: Sequence[ServiceRequirement],
        placements: list[Placement],
        unplaced: list[Unplaced],
        start: float,
    ) -> Plan:
        """The plan of ``placements``, explained against the cluster they leave."""
        state = ClusterState(nodes, services)
        order = {s.name: i for i, s in enumerate(services)}
        node_at = {name: i for i, name in enumerate(state.names)}
        for p in placements:
            state.commit(order[p.service], node_at[p.node], list(p.cores), p.accelerator)
        return make_plan(
            placer=self.name,
            status="feasible",
            objective=self.objective,
            nodes=nodes,
            services=services,
            placements=placements,
            unplaced=unplaced,
            explanations=self._explain(state, services, placements, unplaced).explanations(),
            seconds=time.perf_counter() - start,
        )

    def _explain(
        self,
        state: ClusterState,
        services: Sequence[ServiceRequirement],
        placements: list[Placement],
        unplaced: list[Unplaced],
    ) -> ExplanationLog:
        """Judged once against the final plan: where each service's replicas are, and why
        every other node would not take one more (or could, and was not needed)."""
        log = ExplanationLog(
            state,
            f"chosen by the CP-SAT solver, with the other services' replicas, to minimise "
            f"{self.objective}",
        )
        order = {s.name: i for i, s in enumerate(services)}
        index = {name: i for i, name in enumerate(state.names)}
        for placement in placements:
            log.placed(order[placement.service], index[placement.node])
        for item in unplaced:
            log.left_out(order[item.service])
        for s in range(len(services)):
            hosting = state.hosted[s] > 0
            ok, rejected = state.assess(s)
            for kind, mask in rejected:
                log.reject(s, kind, mask & ~hosting)
            spare = np.flatnonzero(ok & ~hosting)
            fitting = np.array([n for n in spare if state.cores_fit(s, int(n))], dtype=np.int64)
            cores = np.setdiff1d(spare, fitting)
            if len(cores):
                log.reject(s, "cores", cores)
            log.not_chosen(
                s, fitting, lambda n: "could take a replica, but the plan does better without it"
            )
        return log


def _solver_module() -> Any:
    """The CP-SAT module, or `SolverUnavailable` saying how to install OR-Tools."""
    try:
        from harmonia.orchestration import _cpsat
    except ModuleNotFoundError as error:
        raise SolverUnavailable(
            f"the optimal placer needs OR-Tools ({error.name} is missing): "
            "pip install 'harmonia[server]' or pip install ortools"
        ) from None
    return _cpsat


def _counts(
    nodes: Sequence[Node], services: Sequence[ServiceRequirement], placements: list[Placement]
) -> dict[tuple[int, int], int]:
    """Replicas per (service index, node index)."""
    index = {node.name: i for i, node in enumerate(nodes)}
    order = {s.name: i for i, s in enumerate(services)}
    counts: dict[tuple[int, int], int] = defaultdict(int)
    for placement in placements:
        counts[order[placement.service], index[placement.node]] += 1
    return dict(counts)


@dataclass
class _Search:
    """What the solver's rounds found: the best plan fitted from them, and their bounds."""

    formulation: str
    workers: int
    results: list[SolveResult] = field(default_factory=list)
    solved: Plan | None = None
    #: replicas of ``solved`` fitted elsewhere than the model said
    moved: int = 0
    forbidden: int = 0

    def notes(self) -> list[str]:
        last = self.results[-1]
        rounds = len(self.results)
        notes = [
            f"CP-SAT: {last.status}, {self.formulation} formulation, {last.variables} count "
            f"variables, {last.wall_s:.2f} s, {self.workers} worker(s)"
            + (f", {rounds} rounds ({self.forbidden} loads cut)" if rounds > 1 else "")
        ]
        if self.solved is not None and self.moved:
            why = (
                "its per-core fit is relaxed"
                if self.formulation == "nodes"
                else "its node types' capacity is pooled"
            )
            notes.append(
                f"{self.moved} replica(s) fitted elsewhere than the solver's model said: {why}"
            )
        if self.solved is None:
            notes.append(f"the solver found no plan ({last.status}) in its time limit")
        return notes

    def bound(self, unplaced: int) -> float | None:
        """The best proven lower bound of any round (cuts only remove loads that cannot be
        fitted, so each round's holds)."""
        bounds = [b for r in self.results if (b := r.primary_bound(unplaced)) is not None]
        return max(bounds, default=None)

    def proves(self, plan: Plan) -> bool:
        """Whether the last round proved ``plan`` optimal: the per-node model solved to
        optimality and fitted as it was (pooled capacities prove only the bound)."""
        return (
            self.results[-1].status == "optimal"
            and plan is self.solved
            and self.moved == 0
            and self.formulation == "nodes"
        )
