"""Ensembles per consumer: which services to combine, where, how many replicas, in what order.

Selection follows ROHE's formulation (UCC'24). Services are profiled (`ServiceProfile`:
per-class accuracy, confidence, latency, throughput and cost per replica, on a node); a
consumer states a `ConsumerContract`: metrics with weights, each aggregated over the members
(``prod``, ``1-prod(1-x)``, ``sum``, ``avg``, ``min``, ``max``) and normalised linearly or on
a log scale between bounds, plus a deadline and a throughput. `select_ensemble` returns the
`Selection` with the highest utility: members run in parallel (latency = slowest member +
aggregation), each scaled to the throughput (replicas = ⌈throughput / its throughput⌉, cost =
Σ replicas × cost). Small cases are enumerated; large ones searched by branch and bound, which
proves optimality or reports its gap. An infeasible contract gives a selection that says why.

Scheduling orders an ensemble's tasks under the time left: `schedule_llf` (least laxity
first) and `schedule_dream` (early drop, then urgency), as ROHE's orchestrator defines them.
`run_ensemble` calls the members under a deadline and `aggregate_predictions` combines their
scores, weighted per member.

>>> contract = ConsumerContract(
...     metrics={"accuracy[person]": {"bounds": (0.9, 0.999), "scale": "log", "weight": 2},
...              "cost": {"bounds": (0, 10)}},
...     deadline_ms=80, throughput_rps=50, aggregation_ms=5)
>>> services = [
...     ServiceProfile(name="detr", node="gpu-1", accuracy={"person": 0.93}, latency_ms=70,
...                    throughput_rps=50, cost=4),
...     ServiceProfile(name="yolo", node="edge-1", accuracy={"person": 0.88}, latency_ms=20,
...                    throughput_rps=25, cost=1),
...     ServiceProfile(name="yolo", node="gpu-1", accuracy={"person": 0.88}, latency_ms=8,
...                    throughput_rps=100, cost=3),
...     ServiceProfile(name="ssd", node="edge-2", accuracy={"person": 0.80}, latency_ms=30,
...                    throughput_rps=50, cost=1)]
>>> chosen = select_ensemble(services, contract)
>>> [(m.service, m.node, m.replicas) for m in chosen.members], chosen.optimal
([('detr', 'gpu-1', 1), ('yolo', 'edge-1', 2), ('ssd', 'edge-2', 1)], True)
>>> round(chosen.metrics["accuracy[person]"].value, 4), chosen.cost, chosen.latency_ms
(0.9983, 7.0, 75.0)
>>> schedule_dream([EnsembleTask(name="detr", min_execution_ms=70, max_execution_ms=90),
...                 EnsembleTask(name="yolo", min_execution_ms=8, max_execution_ms=20)],
...                remaining_ms=80).names
['detr', 'yolo']
"""

from harmonia.orchestration.ensembles._model import (
    AGGREGATION_ALIASES,
    BUILTIN_METRICS,
    Aggregation,
    ConsumerContract,
    EnsembleError,
    Member,
    MetricObjective,
    MetricValue,
    Objective,
    Scale,
    Selection,
    ServiceProfile,
    parse_metric_name,
)
from harmonia.orchestration.ensembles._router import (
    Aggregate,
    EnsembleRun,
    aggregate_predictions,
    run_ensemble,
)
from harmonia.orchestration.ensembles._schedule import (
    DREAM_STARVATION_WEIGHT,
    EnsembleTask,
    Schedule,
    ScheduledTask,
    allocate_time,
    dream_score,
    schedule,
    schedule_dream,
    schedule_llf,
)
from harmonia.orchestration.ensembles._select import (
    SearchMethod,
    count_ensembles,
    select_ensemble,
)
from harmonia.orchestration.ensembles._utility import aggregate, evaluate_ensemble

__all__ = [
    "AGGREGATION_ALIASES",
    "BUILTIN_METRICS",
    "DREAM_STARVATION_WEIGHT",
    "Aggregate",
    "Aggregation",
    "ConsumerContract",
    "EnsembleError",
    "EnsembleRun",
    "EnsembleTask",
    "Member",
    "MetricObjective",
    "MetricValue",
    "Objective",
    "Scale",
    "Schedule",
    "ScheduledTask",
    "SearchMethod",
    "Selection",
    "ServiceProfile",
    "aggregate",
    "aggregate_predictions",
    "allocate_time",
    "count_ensembles",
    "dream_score",
    "evaluate_ensemble",
    "parse_metric_name",
    "run_ensemble",
    "schedule",
    "schedule_dream",
    "schedule_llf",
    "select_ensemble",
]
