"""Contracts: the service-level objectives of an application, and their evaluation.

A `Contract` lists SLOs. Each SLO reads one scope of the pipeline — a ``service``, a
``stage`` (over its services and instances) or ``end_to_end`` (over traces) — and states, in
the condition grammar of `harmonia.core.conditions`, what must **hold** over its window
(the opposite of a policy boundary, which says when to act)::

    application: detect
    carbon_g_per_kwh: 400          # grid intensity for co2_g (gCO2e per request)
    window: 5 min                  # the default window of every SLO
    slos:
      - name: e2e-latency
        scope: end_to_end
        condition: p99(latency_ms) <= 300
        severity: critical
        then: reroute
      - name: classify-accuracy
        scope: stage
        target: classify
        condition: mean(correct) >= 0.8
        window: 500 samples

Signals, besides any ``AGG(metric)`` of a sample field (``latency_ms``, ``energy_j``) or of a
reported metric: ``correct`` (1 where prediction == target, per labelled sample), ``error``
(a sample's ``error`` field or metric, non-zero = failed) and the bare window signals
``count``, ``throughput`` (samples — or complete traces end to end — per second),
``availability`` (fraction without error; end to end, of traces that completed without
error), ``error_rate``, ``accuracy``, ``energy_j`` (mean per inference, per request end to
end), ``total_energy_j`` and ``co2_g`` (gCO2e per request at ``carbon_g_per_kwh``).

`evaluate` returns one `SLOResult` per SLO: ``met``, ``at_risk`` (met, but the value lies
within ``at_risk_margin`` — 10 % by default — of the threshold, relative to the threshold),
``violated`` or ``no_data``; a violation comes with an explanation and the structured
`Attribution` that traces it to a stage, a service, an instance and its node.

>>> from harmonia.core.application import Application
>>> app = Application.single("demo", ["m"])
>>> contract = Contract.model_validate({"application": "demo", "slos": [
...     {"name": "fast", "scope": "service", "target": "default",
...      "condition": "p99(latency_ms) <= 50", "window": "10 samples"}]})
>>> rows = [{"service": "default", "instance": "i1", "model": "m", "ts": float(t),
...          "latency_ms": 10.0 + 50 * (t == 9)} for t in range(10)]
>>> [result] = evaluate(contract, app, rows, nodes={"i1": "edge-1"})
>>> result.status, result.attribution[0].instance, result.attribution[0].node
('violated', 'i1', 'edge-1')
>>> Contract.model_validate({"slos": [{"name": "x", "scope": "stage",
...                          "condition": "p99(latency_ms) <= 1"}]})
Traceback (most recent call last):
...
pydantic_core._pydantic_core.ValidationError: 1 validation error for Contract
slos.0
  Value error, a stage SLO needs a target (the stage's name) ...
"""

from harmonia.core.contracts._evaluate import evaluate
from harmonia.core.contracts._frame import Frame, frame
from harmonia.core.contracts._model import (
    SLO,
    WINDOW_SIGNALS,
    Attribution,
    Check,
    Contract,
    ContractError,
    Scope,
    Severity,
    SLOResult,
    Status,
    Then,
    parse_contract,
)
from harmonia.core.pipeline import DEFAULT_CARBON_G_PER_KWH

__all__ = [
    "DEFAULT_CARBON_G_PER_KWH",
    "SLO",
    "WINDOW_SIGNALS",
    "Attribution",
    "Check",
    "Contract",
    "ContractError",
    "Frame",
    "SLOResult",
    "Scope",
    "Severity",
    "Status",
    "Then",
    "evaluate",
    "frame",
    "parse_contract",
]
