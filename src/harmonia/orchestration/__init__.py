"""Orchestration: nodes, service requirements, and placers that put replicas on nodes.

Pure logic — models, placers, objectives, explanations — lives in the private modules and
imports no I/O; `harmonia.orchestration.loaders` reads inventories from YAML or ROHE's JSON.
Placers are plugins (entry-point group ``harmonia.placers``): ``first-fit``, ``best-fit``,
``worst-fit`` and ``optimal`` (CP-SAT, needs ``ortools``).

>>> from harmonia.orchestration import BestFitPlacer, Node, ServiceRequirement
>>> nodes = [Node(name="small", cores=2, memory_mib=2048),
...          Node(name="big", cores=8, memory_mib=16384)]
>>> plan = BestFitPlacer().place(nodes, [ServiceRequirement(name="api", cpu_millicores=500)])
>>> plan.placements[0].node
'small'
"""

from harmonia.orchestration._cores import fit_cores
from harmonia.orchestration._errors import InventoryError, SolverUnavailable
from harmonia.orchestration._nodes import Accelerator, Node, PowerModel
from harmonia.orchestration._objectives import objective_value
from harmonia.orchestration._plan import (
    OBJECTIVES,
    Explanation,
    Objective,
    ObjectiveValue,
    Placement,
    Plan,
    PlanStatus,
    Rejection,
    RejectionKind,
    Unplaced,
    UnplacedKind,
)
from harmonia.orchestration._protocol import Placer, create_placer
from harmonia.orchestration._services import AcceleratorDemand, Contention, ServiceRequirement
from harmonia.orchestration._verify import plan_violations
from harmonia.orchestration.heuristics import BestFitPlacer, FirstFitPlacer, WorstFitPlacer
from harmonia.orchestration.optimal import OptimalPlacer

__all__ = [
    "OBJECTIVES",
    "Accelerator",
    "AcceleratorDemand",
    "BestFitPlacer",
    "Contention",
    "Explanation",
    "FirstFitPlacer",
    "InventoryError",
    "Node",
    "Objective",
    "ObjectiveValue",
    "OptimalPlacer",
    "Placement",
    "Placer",
    "Plan",
    "PlanStatus",
    "PowerModel",
    "Rejection",
    "RejectionKind",
    "ServiceRequirement",
    "SolverUnavailable",
    "Unplaced",
    "UnplacedKind",
    "WorstFitPlacer",
    "create_placer",
    "fit_cores",
    "objective_value",
    "plan_violations",
]
