"""Policies: the YAML/JSON format, field-path errors, Harmonica's format, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harmonia.cli import app
from harmonia.compat.harmonica.policy import convert_harmonica
from harmonia.core.errors import PolicyError
from harmonia.core.policy import Tactic, parse_policy
from harmonia.policies import PRESETS, dump_policy, load_policy, parse_policy_text

EXAMPLES = PRESETS
EXAMPLE_FILES = sorted(p for p in EXAMPLES.rglob("*") if p.suffix in {".yaml", ".json"})

DESIGN_EXAMPLE = """
policy: traffic-harmonia
system: traffic
models: [linear, svm, lstm]
objective:
  quality: r2
  weights: {quality: 0.95, energy: 0.05}
  energy_range_j: [0, 0.025]
window: 200 samples
strategy: harmone
boundaries:
  - when: score < 0.78
    then: switch_model
  - when: drift.kl > 0.75
    then: reuse_or_retrain
  - when: p95(latency_ms) > 50
    then: switch_model
cooldown: 3 windows
"""


def issues_of(text: str) -> dict[str, str]:
    with pytest.raises(PolicyError) as caught:
        parse_policy_text(text)
    return {issue.path: issue.reason for issue in caught.value.issues}


def test_the_design_example_reads_as_documented() -> None:
    policy = parse_policy_text(DESIGN_EXAMPLE)
    assert policy.window.samples == 200
    assert policy.cooldown.windows == 3
    assert policy.objective.weights.quality == 0.95
    assert [b.then for b in policy.boundaries] == [
        Tactic.SWITCH_MODEL,
        Tactic.REUSE_OR_RETRAIN,
        Tactic.SWITCH_MODEL,
    ]
    assert policy.drift_detectors() == ["kl"]
    assert [o.key for o in policy.operands()] == ["score", "drift.kl", "p95(latency_ms)"]


@pytest.mark.parametrize(
    ("window", "samples", "seconds"),
    [("200 samples", 200, None), (64, 64, None), ("60 s", None, 60.0), ("5 min", None, 300.0)],
)
def test_window_forms(window: object, samples: int | None, seconds: float | None) -> None:
    parsed = parse_policy({"policy": "p", "system": "s", "models": ["m"], "window": window})
    assert (parsed.window.samples, parsed.window.seconds) == (samples, seconds)


def test_dump_and_read_back_gives_the_same_policy() -> None:
    policy = parse_policy_text(DESIGN_EXAMPLE)
    for fmt in ("yaml", "json"):
        assert parse_policy_text(dump_policy(policy, fmt)) == policy


@pytest.mark.parametrize(
    ("change", "path", "reason"),
    [
        ("window: 200 bananas", "window", "expected '200 samples'"),
        ("cooldown: often", "cooldown", "expected '3 windows'"),
        ("models: []", "models", "at least 1"),
        ("models: [a, a]", "models", "listed twice"),
        ("strategy: magic", "strategy", "unknown strategy 'magic'"),
        ("objective: {weights: {quality: 0.5, energy: 0.2}}", "objective.weights", "sum to 1"),
        ("objective: {energy_range_j: [1, 0]}", "objective.energy_range_j", "0 <= low < high"),
        ("initial_model: gpt", "", "initial_model 'gpt' is not one of models"),
        (
            "boundaries: [{when: 'score <', then: switch_model}]",
            "boundaries[0].when",
            "expected a number",
        ),
        ("boundaries: [{when: 'score < 1', then: explode}]", "boundaries[0].then", "switch_model"),
        (
            "boundaries: [{when: 'drift.nope > 1', then: retrain}]",
            "boundaries",
            "unknown drift detector 'nope'",
        ),
        ("options: {gamma: 7}", "options", "gamma must be in [0, 1]"),
        ("options: {beta: 0.5}", "options", "unexpected keyword argument 'beta'"),
        ("drift: {detectors: {kl: {bins: 0}}}", "drift.detectors.kl", "bins"),
        ("colour: blue", "colour", "Extra inputs are not permitted"),
        ("drift: {features: [sharpness, sharpness]}", "drift", "'sharpness' is listed twice"),
        ("drift: {features: [drift_value]}", "drift", "is the watched value already"),
        ("drift: {features: [a.b]}", "drift", "letters, digits and _"),
        ("drift: {features: [drift]}", "drift", "letters, digits and _"),
    ],
)
def test_invalid_policies_name_the_field_and_reason(change: str, path: str, reason: str) -> None:
    base = {"policy": "p", "system": "traffic", "models": "[linear, svm, lstm]", "window": "200"}
    key = change.split(":", 1)[0]
    lines = [f"{k}: {v}" for k, v in base.items() if k != key] + [change]
    issues = issues_of("\n".join(lines))
    assert path in issues, issues
    assert reason in issues[path]


def test_every_problem_is_reported_at_once() -> None:
    issues = issues_of("policy: p\nsystem: s\nmodels: [a, a]\nwindow: nope\ncooldown: -1")
    assert {"models", "window", "cooldown.windows"} <= set(issues)


def test_not_yaml_at_all() -> None:
    issues = issues_of("policy: [unclosed")
    assert "not valid YAML or JSON" in issues[""]


def test_a_list_is_not_a_policy() -> None:
    assert "mapping" in issues_of("- a\n- b")[""]


@pytest.mark.parametrize("file", EXAMPLE_FILES, ids=lambda p: p.name)
def test_every_shipped_example_is_valid(file: Path) -> None:
    load_policy(file)


def test_examples_include_a_harmonica_preset() -> None:
    assert any("policy_id" in p.read_text() for p in EXAMPLE_FILES)


# -- Harmonica ---------------------------------------------------------------------------
HARMONICA = {
    "policy_id": "reg_harmone_score",
    "quality_attribute": "score",
    "adaptation_boundary": {"condition": "LESS_THAN", "threshold": 0.78, "dynamic_logic": None},
    "tactics": [
        {"tactic_id": "handle_data_drift", "priority": 2, "tactic_endpoint": "http://x/t"},
        {"tactic_id": "execute_mape_plan", "priority": 1, "tactic_endpoint": "http://x/t"},
    ],
    "secondary_boundaries": [
        {
            "quality_attribute": "latency_ms",
            "condition": "GREATER_THAN",
            "threshold": 50,
            "tactic_id": "handle_data_drift",
        }
    ],
}


def test_harmonica_policy_converts() -> None:
    policy = convert_harmonica(HARMONICA)
    assert policy.policy == "reg_harmone_score"
    assert policy.system == "traffic"
    assert policy.strategy == "harmone"
    assert policy.window.samples == 1
    assert [(str(b.when), b.then) for b in policy.boundaries] == [
        ("mean(score) < 0.78", Tactic.SWITCH_MODEL),  # the top-priority tactic
        ("mean(latency_ms) > 50", Tactic.REUSE_OR_RETRAIN),
    ]
    assert policy.harmonica == HARMONICA


def test_harmonica_policy_through_the_file_loader(tmp_path: Path) -> None:
    file = tmp_path / "preset.json"
    file.write_text(json.dumps(HARMONICA))
    assert load_policy(file).strategy == "harmone"


@pytest.mark.parametrize(
    ("field", "value", "path", "reason"),
    [
        (
            "adaptation_boundary",
            {"condition": "ABOUT", "threshold": 1},
            "adaptation_boundary.condition",
            "LESS_THAN",
        ),
        (
            "adaptation_boundary",
            {"condition": "LESS_THAN", "threshold": "x"},
            "adaptation_boundary.threshold",
            "number",
        ),
        (
            "adaptation_boundary",
            {"condition": "LESS_THAN", "threshold": 1, "dynamic_logic": "historic_avg ** 2"},
            "adaptation_boundary.dynamic_logic",
            "historic_avg * 1.3",
        ),
        (
            "tactics",
            [{"tactic_id": 42, "priority": 1}],
            "tactics[0].tactic_id",
            "must be text",
        ),
        ("quality_attribute", "", "adaptation_boundary.quality_attribute", "name the metric"),
    ],
)
def test_bad_harmonica_policies_name_harmonicas_fields(
    field: str, value: object, path: str, reason: str
) -> None:
    with pytest.raises(PolicyError) as caught:
        convert_harmonica({**HARMONICA, field: value})
    issues = {i.path: i.reason for i in caught.value.issues}
    assert path in issues and reason in issues[path], issues


# -- CLI ---------------------------------------------------------------------------------
runner = CliRunner()


def test_cli_validate_accepts_an_example() -> None:
    result = runner.invoke(app, ["policy", "validate", str(EXAMPLES / "traffic-harmone.yaml")])
    assert result.exit_code == 0
    assert result.output.strip() == "ok"


def test_cli_validate_accepts_all_examples() -> None:
    result = runner.invoke(app, ["policy", "validate", *map(str, EXAMPLE_FILES)])
    assert result.exit_code == 0, result.output
    assert result.output.count("ok ") == len(EXAMPLE_FILES)


def test_cli_validate_rejects_with_field_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "policy: p\nsystem: s\nmodels: [a]\nboundaries:\n"
        "  - when: mean(latency_ms > 3\n    then: switch_model\n"
    )
    result = runner.invoke(app, ["policy", "validate", str(bad)])
    assert result.exit_code == 2
    assert "boundaries[0].when" in result.output
    assert "expected ')'" in result.output


def test_cli_validate_missing_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["policy", "validate", str(tmp_path / "none.yaml")])
    assert result.exit_code == 2
    assert "cannot read the file" in result.output


def test_cli_show_converts_harmonica() -> None:
    result = runner.invoke(
        app, ["policy", "show", str(EXAMPLES / "harmonica" / "reg_harmone_score.json")]
    )
    assert result.exit_code == 0
    assert "mean(score) < 0.78" in result.output
