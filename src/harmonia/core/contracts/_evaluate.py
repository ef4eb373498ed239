"""Evaluating a contract: every SLO's checks, its status, and for a violation its explanation."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from harmonia.core.application import Application
from harmonia.core.conditions import Comparison, Condition, Junction
from harmonia.core.contracts._explain import _explain
from harmonia.core.contracts._frame import Frame
from harmonia.core.contracts._model import (
    SLO,
    Attribution,
    Check,
    Contract,
    ContractError,
    SLOResult,
    Status,
)
from harmonia.core.contracts._signals import _combine, _comparisons, _Read, _Reader, _status

# -- evaluation ------------------------------------------------------------------------------


def evaluate(
    contract: Contract,
    app: Application,
    rows: Iterable[Mapping[str, Any]] | Frame,
    *,
    nodes: Mapping[str, str] | None = None,
    signals: Mapping[str, float] | None = None,
) -> list[SLOResult]:
    """Evaluate every SLO of ``contract`` over ``rows`` (telemetry dicts, or a `frame` of them,
    to share the grouping between contracts). Time windows end at the last sample's ``ts``.
    ``nodes`` maps instances to their nodes (a sample's own ``node`` field also counts);
    ``signals`` holds the observation agents' latest results (``observer.<name>.<field>``).
    Raises `ContractError` when the contract does not fit ``app``."""
    issues = contract.issues_with(app)
    if issues:
        raise ContractError(issues)
    data = rows if isinstance(rows, Frame) else Frame(app, rows)
    reader = _Reader(contract, data, signals, nodes)
    results = []
    for slo in contract.slos:
        results.append(_evaluate_slo(contract, slo, reader, nodes or {}))
    return results


def _evaluate_slo(
    contract: Contract, slo: SLO, reader: _Reader, nodes: Mapping[str, str]
) -> SLOResult:
    condition = slo.parsed
    window = slo.window or contract.window
    margin = contract.at_risk_margin
    reads: dict[Comparison, _Read] = {}
    checks = []
    for comparison in _comparisons(condition):
        read = reader.read(comparison.operand, slo, window)
        reads[comparison] = read
        checks.append(
            Check(
                str(comparison.operand),
                comparison.op,
                comparison.threshold,
                read.value,
                _status(comparison.op, read.value, comparison.threshold, margin),
            )
        )
    status = _judge(condition, iter(checks))
    explanation: str | None = None
    attribution: tuple[Attribution, ...] = ()
    if status == "violated":
        worst = next(
            pair for pair in zip(reads, checks, strict=True) if pair[1].status == "violated"
        )
        comparison, check = worst
        explanation, attribution = _explain(
            slo, comparison, check, reads[comparison], reader, window, nodes
        )
    return SLOResult(
        slo=slo.name,
        scope=slo.scope,
        target=slo.target,
        condition=slo.condition,
        status=status,
        severity=slo.severity,
        then=slo.then,
        window=str(window),
        samples=max((read.count for read in reads.values()), default=0),
        checks=tuple(checks),
        explanation=explanation,
        attribution=attribution,
    )


def _judge(condition: Condition, checks: Any) -> Status:
    if isinstance(condition, Comparison):
        status: Status = next(checks).status
        return status
    assert isinstance(condition, Junction)
    return _combine(condition.op, [_judge(part, checks) for part in condition.parts])
