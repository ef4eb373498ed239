"""Harmonica's analysis as Harmonica's server does it: static then dynamic thresholds,
secondary boundaries on the latest message, any tactic id (recorded answers:
tests/data/harmonica/sequences.json)."""

from __future__ import annotations

import pytest

from harmonia.compat.harmonica.analysis import drifted, top_tactic, violated
from harmonia.compat.harmonica.dynamic import DynamicLogicError, parse_dynamic
from harmonia.compat.harmonica.policy import convert_harmonica
from harmonia.core.policy import Tactic


@pytest.mark.parametrize(
    ("text", "history", "expected"),
    [
        ("historic_avg * 1.3", [20, 21, 22, 40], 25.75 * 1.3),
        ("historic_mean*2", [1, 3], 4.0),
        ("historic_max + 2", [1, 5], 7.0),
        ("historic_min - 0.5", [1, 5], 0.5),
        ("historic_median", [1, 2, 9], 2.0),
        ("  historic_avg  *  1e1 ", [2], 20.0),
    ],
)
def test_dynamic_logic_grammar(text: str, history: list[float], expected: float) -> None:
    assert parse_dynamic(text).value(history) == pytest.approx(expected)


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os')",
        "historic_avg ** 2",
        "historic_avg * x",
        "avg * 1.3",
        "1.3",
        "",
        "historic_avg * inf",
    ],
)
def test_anything_else_is_refused_never_evaluated(text: str) -> None:
    with pytest.raises(DynamicLogicError):
        parse_dynamic(text)


def test_no_history_keeps_the_static_threshold() -> None:
    assert parse_dynamic("historic_avg * 2").value([]) is None
    document = {
        "adaptation_boundary": {
            "condition": "GREATER_THAN",
            "threshold": 10,
            "dynamic_logic": "historic_avg * 1.3",
        }
    }
    assert violated(document, 20, [])


def test_dynamic_boundary_as_harmonica_recorded_it() -> None:
    """Harmonica fired on 40 only: 20, 21, 22 pass 10 but not their mean times 1.3."""
    document = {
        "adaptation_boundary": {
            "condition": "GREATER_THAN",
            "threshold": 10,
            "dynamic_logic": "historic_avg * 1.3",
        }
    }
    seen: list[float] = []
    fired = []
    for value in (20, 21, 22, 40):
        seen.append(value)
        fired.append(violated(document, value, seen))
    assert fired == [False, False, False, True]


def test_secondary_boundaries_and_tactics() -> None:
    document = {
        "tactics": [
            {"tactic_id": "b", "priority": 2, "tactic_endpoint": "http://x/2"},
            {"tactic_id": "a", "priority": 1, "tactic_endpoint": "http://x/1"},
        ],
        "secondary_boundaries": [
            {
                "quality_attribute": "kl_div",
                "condition": "GREATER_THAN",
                "threshold": 0.1,
                "tactic_id": "handle_data_drift",
            },
            {"quality_attribute": "energy", "condition": "GREATER_THAN", "threshold": 5},
        ],
    }
    found = drifted(document, {"kl_div": 0.3, "energy": 6, "score": 1})
    assert [(d.attribute, d.value, d.tactic_id) for d in found] == [
        ("kl_div", 0.3, "handle_data_drift"),
        ("energy", 6, "handle_data_drift"),
    ]
    assert drifted(document, {"kl_div": 0.05}) == []
    assert top_tactic(document) == document["tactics"][1]


def test_harmonicas_own_single_policy_converts() -> None:
    """reg_single_*.json: tactic_id "" is stored and forwarded; Harmonia's loop has no
    boundary for it."""
    policy = convert_harmonica(
        {
            "policy_id": "reg_single_svm",
            "quality_attribute": "r2_score",
            "adaptation_boundary": {
                "type": "STATIC_THRESHOLD",
                "condition": "LESS_THAN",
                "threshold": 0,
            },
            "tactics": [
                {
                    "tactic_id": "",
                    "priority": 1,
                    "tactic_type": "CORE",
                    "tactic_endpoint": "http://localhost:8080/adaptor/tactic",
                }
            ],
            "secondary_boundaries": [],
        }
    )
    assert policy.strategy == "single" and policy.boundaries == []


def test_custom_tactics_convert_beside_known_ones() -> None:
    policy = convert_harmonica(
        {
            "policy_id": "reg_mine",
            "quality_attribute": "score",
            "adaptation_boundary": {
                "condition": "LESS_THAN",
                "threshold": 0.5,
                "dynamic_logic": "historic_avg * 0.9",
            },
            "tactics": [
                {"tactic_id": "my_tactic", "priority": 1},
                {"tactic_id": "execute_mape_plan", "priority": 2},
            ],
            "secondary_boundaries": [
                {
                    "quality_attribute": "kl_div",
                    "condition": "GREATER_THAN",
                    "threshold": 0.1,
                    "tactic_id": "handle_data_drift",
                }
            ],
        }
    )
    assert policy.strategy == "harmone"
    assert [(str(b.when), b.then) for b in policy.boundaries] == [
        ("mean(kl_div) > 0.1", Tactic.REUSE_OR_RETRAIN)
    ]
