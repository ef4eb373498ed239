"""Harmonica's analyse and plan steps, on a policy document as Harmonica stores it.

Pure: no I/O, no clock. `violated` is the primary boundary checked on each telemetry
message (static threshold, then ``dynamic_logic`` over the history); `drifted` is the
periodic check of ``secondary_boundaries`` on the latest message; `top_tactic` is the
tactic Harmonica fires. Values are compared as sent and kept as sent (5 stays 5).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harmonia.compat.harmonica.dynamic import DynamicLogicError, parse_dynamic
from harmonia.core.numbers import is_number

#: the tactic a secondary boundary fires when it names none (Harmonica needs one there)
DRIFT_TACTIC = "handle_data_drift"


def crosses(condition: Any, value: float, threshold: Any) -> bool:
    """``value`` beyond ``threshold`` in the direction ``condition`` names."""
    if not is_number(threshold):
        return False
    if condition == "GREATER_THAN":
        return bool(value > threshold)
    if condition == "LESS_THAN":
        return bool(value < threshold)
    return False


def violated(document: dict[str, Any], value: Any, history: Sequence[float]) -> bool:
    """Whether ``value`` of the policy's quality attribute violates its primary boundary.

    ``history`` holds the attribute's values recorded under the policy, the current one
    included (as Harmonica computes its historic average after storing the message).
    """
    if not is_number(value):
        return False
    boundary = document.get("adaptation_boundary") or {}
    condition = boundary.get("condition")
    if not crosses(condition, value, boundary.get("threshold")):
        return False
    logic = boundary.get("dynamic_logic")
    if not logic:
        return True
    try:
        threshold = parse_dynamic(logic).value(history)
    except DynamicLogicError:  # refused when the policy was posted; stored before that
        return False
    return threshold is None or crosses(condition, value, threshold)


@dataclass(frozen=True)
class Drift:
    """A secondary boundary crossed by the latest message."""

    attribute: str
    value: float
    tactic_id: str


def drifted(document: dict[str, Any], latest: dict[str, Any]) -> list[Drift]:
    """The secondary boundaries ``latest`` crosses, in the policy's order."""
    found = []
    for boundary in document.get("secondary_boundaries") or []:
        if not isinstance(boundary, dict):
            continue
        attribute = boundary.get("quality_attribute")
        if not isinstance(attribute, str):
            continue
        value = latest.get(attribute)
        if not is_number(value):
            continue
        if crosses(boundary.get("condition"), value, boundary.get("threshold")):
            tactic = boundary.get("tactic_id")
            found.append(Drift(attribute, value, DRIFT_TACTIC if tactic is None else str(tactic)))
    return found


def top_tactic(document: dict[str, Any]) -> dict[str, Any] | None:
    """The tactic with the best (lowest) priority; the first listed among equals."""
    tactics = [t for t in document.get("tactics") or [] if isinstance(t, dict)]
    if not tactics:
        return None
    return min(tactics, key=_priority)


def _priority(tactic: dict[str, Any]) -> float:
    priority = tactic.get("priority")
    return float(priority) if is_number(priority) else 0.0


def first_endpoint(document: dict[str, Any]) -> str | None:
    """Where Harmonica sends a secondary boundary's tactic: the first tactic's endpoint."""
    tactics = document.get("tactics") or []
    first = tactics[0] if tactics and isinstance(tactics[0], dict) else None
    endpoint = first.get("tactic_endpoint") if first else None
    return str(endpoint) if endpoint else None
