"""Harmonica's policy JSON, converted to a Harmonia policy so its presets run unchanged.

Harmonica's format::

    {"policy_id": "reg_harmone_score",
     "quality_attribute": "score",
     "adaptation_boundary": {"type": "STATIC_THRESHOLD", "condition": "LESS_THAN",
                             "threshold": 0.78, "dynamic_logic": null},
     "tactics": [{"tactic_id": "execute_mape_plan", "priority": 1,
                  "tactic_type": "CORE", "tactic_endpoint": "http://.../adaptor/tactic"}],
     "secondary_boundaries": [{"quality_attribute": "normalized_energy",
                               "condition": "GREATER_THAN", "threshold": 0.6}],
     "associated_qas": ["r2_score", "normalized_energy", "model_used"]}

Harmonica evaluates each telemetry message as it arrives, on the value the system reported
(``score`` there is the system's own number), and fires only the tactic with the best
(lowest) priority; so the converted policy reads ``mean(<attribute>)`` over a one-sample
window, with no cooldown.
Its tactic ids map to tactics and a strategy: ``execute_mape_plan`` is HarmonE's plan
(``harmone``, switch_model), ``handle_data_drift`` is reuse_or_retrain, and
``switch_model_r2_baseline`` is the plain ``switch``. Any other id (a system's own tactic,
or ``""`` as in Harmonica's ``reg_single_*.json``) is accepted as Harmonica accepts it: the
compatibility routes store it and forward it to the tactic's endpoint, while the converted
policy has no boundary for it (Harmonia's own loop would not know what to do). A boundary's
``dynamic_logic`` must follow `harmonia.compat.harmonica.dynamic`'s grammar; the converted
policy keeps the static threshold. The original document is kept under ``harmonica``
(tactic endpoints included) for the server's compatibility routes.
"""

from __future__ import annotations

from typing import Any

from harmonia.compat.harmonica.analysis import DRIFT_TACTIC
from harmonia.compat.harmonica.dynamic import DynamicLogicError, parse_dynamic
from harmonia.core.errors import Issue, PolicyError
from harmonia.core.numbers import is_number
from harmonia.core.policy import Policy, Tactic, parse_policy

_COMPARATORS = {"LESS_THAN": "<", "GREATER_THAN": ">"}
_TACTICS: dict[str, tuple[Tactic, str | None]] = {
    "execute_mape_plan": (Tactic.SWITCH_MODEL, "harmone"),
    "handle_data_drift": (Tactic.REUSE_OR_RETRAIN, None),
    "switch_model_r2_baseline": (Tactic.SWITCH_MODEL, "switch"),
    "switch_model": (Tactic.SWITCH_MODEL, "switch"),
    "retrain": (Tactic.RETRAIN, None),
}
MAX_TACTIC_ID = 128
TACTIC_ID_RULE = f"must be text of at most {MAX_TACTIC_ID} characters (any id: it is forwarded)"
_SYSTEMS = {
    "reg": ("traffic", ["linear", "svm", "lstm"]),
    "cv": ("vision", ["small", "medium", "large"]),
}


def is_harmonica_policy(data: Any) -> bool:
    return isinstance(data, dict) and "policy_id" in data and "policy" not in data


def _condition(boundary: Any, attribute: Any, path: str, issues: list[Issue]) -> str | None:
    if not isinstance(boundary, dict):
        issues.append(Issue(path, "must be an object with condition and threshold"))
        return None
    if not isinstance(attribute, str) or not attribute.strip():
        issues.append(Issue(f"{path}.quality_attribute", "must name the metric to watch"))
        return None
    comparator = _COMPARATORS.get(str(boundary.get("condition")))
    if comparator is None:
        issues.append(
            Issue(
                f"{path}.condition",
                f"must be LESS_THAN or GREATER_THAN, got {boundary.get('condition')!r}",
            )
        )
    threshold = boundary.get("threshold")
    if not is_number(threshold):
        issues.append(Issue(f"{path}.threshold", f"must be a number, got {threshold!r}"))
    logic = boundary.get("dynamic_logic")
    if logic is not None and logic != "":
        try:
            parse_dynamic(logic)
        except DynamicLogicError as error:
            issues.append(Issue(f"{path}.dynamic_logic", str(error)))
    if comparator is None or not is_number(threshold):
        return None
    # Harmonica compares the value the system reported in each message: with a one-sample
    # window that is exactly the mean of the reported metric.
    return f"mean({attribute}) {comparator} {threshold}"


def convert_harmonica(data: dict[str, Any], source: str | None = None) -> Policy:
    """Convert a Harmonica policy document, or raise `PolicyError` naming Harmonica's fields."""
    issues: list[Issue] = []
    policy_id = data.get("policy_id")
    if not isinstance(policy_id, str) or not policy_id.strip():
        issues.append(Issue("policy_id", "must be a non-empty string"))
        policy_id = "harmonica"

    tactics = data.get("tactics", [])
    if not isinstance(tactics, list):
        issues.append(Issue("tactics", "must be a list"))
        tactics = []
    ranked: list[tuple[float, int, str]] = []
    for index, tactic in enumerate(tactics):
        path = f"tactics[{index}]"
        if not isinstance(tactic, dict):
            issues.append(Issue(path, "must be an object with tactic_id and priority"))
            continue
        tactic_id = tactic.get("tactic_id", "")
        if not isinstance(tactic_id, str) or len(tactic_id) > MAX_TACTIC_ID:
            issues.append(Issue(f"{path}.tactic_id", TACTIC_ID_RULE))
            continue
        priority = tactic.get("priority", index + 1)
        if not is_number(priority):
            issues.append(Issue(f"{path}.priority", f"must be a number, got {priority!r}"))
            continue
        ranked.append((float(priority), index, tactic_id))
    ranked.sort()

    conditions: list[tuple[str, str | None]] = []
    primary = _condition(
        data.get("adaptation_boundary"),
        data.get("quality_attribute"),
        "adaptation_boundary",
        issues,
    )
    conditions.append((primary or "", None))
    secondary = data.get("secondary_boundaries", [])
    if not isinstance(secondary, list):
        issues.append(Issue("secondary_boundaries", "must be a list"))
        secondary = []
    for index, boundary in enumerate(secondary):
        path = f"secondary_boundaries[{index}]"
        attribute = boundary.get("quality_attribute") if isinstance(boundary, dict) else None
        text = _condition(boundary, attribute, path, issues)
        tactic_id = boundary.get("tactic_id") if isinstance(boundary, dict) else None
        if tactic_id is not None and (
            not isinstance(tactic_id, str) or len(tactic_id) > MAX_TACTIC_ID
        ):
            issues.append(Issue(f"{path}.tactic_id", TACTIC_ID_RULE))
            tactic_id = None
        conditions.append((text or "", DRIFT_TACTIC if tactic_id is None else tactic_id))
    if issues:
        raise PolicyError(issues, source)

    # Harmonica fires the top-priority tactic on the primary boundary
    first = ranked[0][2] if ranked else None
    plans = (_TACTICS[t][1] for *_, t in ranked if t in _TACTICS)
    strategy = next((plan for plan in plans if plan is not None), "single")
    boundaries = []
    for index, (text, tactic_id) in enumerate(conditions):
        known = _TACTICS.get((first if index == 0 else tactic_id) or "")
        if known is not None:
            boundaries.append({"when": text, "then": known[0].value})

    prefix = policy_id.split("_", 1)[0]
    system, models = _SYSTEMS.get(prefix, ("harmonica", ["linear", "svm", "lstm"]))
    converted = {
        "policy": policy_id,
        "system": data.get("system", system),
        "models": data.get("models", models),
        "objective": {"quality": "confidence" if prefix == "cv" else "r2"},
        "window": 1,
        "strategy": strategy,
        "boundaries": boundaries,
        "cooldown": 0,
        "harmonica": data,
    }
    return parse_policy(converted, source)
