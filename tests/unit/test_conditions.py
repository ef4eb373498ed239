"""The boundary-condition grammar: parsing, evaluation, and rejection of anything else."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harmonia.core.conditions import (
    AGGREGATES,
    LABELS,
    Comparison,
    Condition,
    Junction,
    Match,
    Operand,
    parse_condition,
)
from harmonia.core.errors import ConditionSyntaxError

METRICS = st.sampled_from(["latency_ms", "energy_j", "confidence", "error", "r2_model"])
DERIVED = st.sampled_from(["score", "quality", "energy_norm", "drift.kl", "drift.psi", "mae"])
OPS = st.sampled_from(["<", "<=", ">", ">=", "==", "!="])
NUMBERS = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False).map(
    lambda x: round(x, 4)
)


SELECTORS = st.lists(
    st.builds(
        Match,
        st.sampled_from(sorted(LABELS)),
        st.sampled_from(["=", "!="]),
        st.text("abcxyz-_.0123456789 ", max_size=12),
    ),
    max_size=2,
).map(tuple)


@st.composite
def aggregates(draw: st.DrawFn) -> Operand:
    """A metric's aggregate, any of them, with or without a selector."""
    how = draw(st.sampled_from([a for a in AGGREGATES if a != "ratio"]))
    name = "" if how == "count" and draw(st.booleans()) else draw(METRICS)
    q = draw(st.integers(0, 100).map(float)) if how == "percentile" else None
    return Operand(name, how, draw(SELECTORS), q)


@st.composite
def operands(draw: st.DrawFn) -> Operand:
    kind = draw(st.sampled_from(["aggregate", "ratio", "derived"]))
    if kind == "aggregate":
        return draw(aggregates())
    if kind == "ratio":
        return Operand("", "ratio", terms=(draw(aggregates()), draw(aggregates())))
    return Operand(draw(DERIVED))


comparisons = st.builds(Comparison, operands(), OPS, NUMBERS)


def _junction(children: st.SearchStrategy[Condition]) -> st.SearchStrategy[Condition]:
    return st.builds(
        lambda op, parts: Junction(op, tuple(parts)),
        st.sampled_from(["and", "or"]),
        st.lists(children, min_size=2, max_size=3),
    )


conditions = st.recursive(comparisons, _junction, max_leaves=8)


def _reference_eval(condition: Condition, signals: dict[str, float]) -> bool:
    """An independent evaluator used as the oracle for the property tests."""
    if isinstance(condition, Junction):
        results = [_reference_eval(p, signals) for p in condition.parts]
        return all(results) if condition.op == "and" else any(results)
    value = signals.get(condition.operand.key)
    if value is None:
        return False
    return {
        "<": value < condition.threshold,
        "<=": value <= condition.threshold,
        ">": value > condition.threshold,
        ">=": value >= condition.threshold,
        "==": value == condition.threshold,
        "!=": value != condition.threshold,
    }[condition.op]


@given(conditions)
def test_rendering_parses_back_to_the_same_tree(condition: Condition) -> None:
    assert parse_condition(str(condition)) == condition


@given(
    conditions,
    st.dictionaries(
        st.sampled_from(
            [
                "score",
                "quality",
                "energy_norm",
                "drift.kl",
                "drift.psi",
                "mae",
                *[f"{a}({m})" for a in AGGREGATES for m in ["latency_ms", "confidence", "error"]],
            ]
        ),
        NUMBERS,
    ),
)
def test_evaluation_matches_an_independent_evaluator(
    condition: Condition, signals: dict[str, float]
) -> None:
    assert condition.evaluate(signals).fired == _reference_eval(condition, signals)


@given(st.text(max_size=40))
def test_arbitrary_text_either_parses_or_raises_a_syntax_error(text: str) -> None:
    try:
        parsed = parse_condition(text)
    except ConditionSyntaxError as error:
        assert 0 <= error.position <= len(text)
        assert error.reason
    else:
        assert isinstance(parsed, Comparison | Junction)


def test_and_binds_tighter_than_or() -> None:
    condition = parse_condition("score < 0.5 or score > 2 and drift.kl > 1")
    assert isinstance(condition, Junction) and condition.op == "or"
    assert isinstance(condition.parts[1], Junction) and condition.parts[1].op == "and"
    assert condition.evaluate({"score": 0.1, "drift.kl": 0.0}).fired
    assert not condition.evaluate({"score": 3.0, "drift.kl": 0.0}).fired


def test_parentheses_group() -> None:
    condition = parse_condition("(score < 0.5 or score > 2) and drift.kl > 1")
    assert not condition.evaluate({"score": 0.1, "drift.kl": 0.0}).fired
    assert condition.evaluate({"score": 0.1, "drift.kl": 2.0}).fired


def test_keys_and_values_for_explanations() -> None:
    condition = parse_condition("p95(latency_ms) > 50 and latency_ms > 10")
    result = condition.evaluate({"p95(latency_ms)": 61.0, "mean(latency_ms)": 12.0})
    assert result.fired
    assert result.values == {"p95(latency_ms)": 61.0, "mean(latency_ms)": 12.0}


def test_missing_or_nan_signals_never_fire() -> None:
    condition = parse_condition("score < 0.78")
    assert condition.evaluate({}).missing == ("score",)
    assert not condition.evaluate({}).fired
    assert not condition.evaluate({"score": math.nan}).fired


def test_numbers_in_every_notation() -> None:
    assert parse_condition("energy_j > 2.5e-2").threshold == 0.025  # type: ignore[union-attr]
    assert parse_condition("score > -1").threshold == -1.0  # type: ignore[union-attr]
    assert parse_condition("score>.5").threshold == 0.5  # type: ignore[union-attr]


def test_reported_metric_inside_an_aggregate_is_not_the_derived_signal() -> None:
    assert parse_condition("mean(score) < 0.7").operand.key == "mean(score)"  # type: ignore[union-attr]
    assert parse_condition("score < 0.7").operand.key == "score"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("score <", "expected a number, found end of condition"),
        ("mean(latency_ms > 3", "expected ')'"),
        ("__import__('os')", "unknown aggregate '__import__'"),
        ("score < 1; import os", "unexpected character ';'"),
        ("__import__(os)", "unknown aggregate '__import__'"),
        ("", "empty condition"),
        ("score < 0.5 or", "expected a signal"),
        ("score < 0.5 0.7", "after a complete condition"),
        ("score 0.5", "expected a comparison operator"),
        ("p97(latency_ms) > 3", "unknown aggregate 'p97'"),
        ("os.system > 1", "only drift and observer signals have a dotted name"),
        ("drift.kl.x > 1", "write drift.<detector>"),
        ("score < 1e999", "finite number"),
        ("(score < 1", "expected ')'"),
        ("and < 1", "keyword"),
        ("score = 1", "expected a comparison operator"),
        ("ratio(latency_ms, count()) > 1", "each term of ratio(a, b) is an aggregate"),
        ("ratio(ratio(count(), count()), count()) > 1", "each term of ratio(a, b)"),
        ('count({host="a"}) > 1', "unknown label 'host'"),
        ("count({model=large}) > 1", "a quoted value"),
        ('count({model=="a"}) > 1', "expected = or != after model"),
        ('p95(latency_ms{model="a") > 1', "'}' to close the selector"),
        ("percentile(latency_ms) > 1", "',' and the percentile"),
        ("percentile(latency_ms, 120) > 1", "between 0 and 100"),
        ("sum() > 1", "a metric name inside sum"),
        ("mean(drift.kl) > 1", "not a telemetry metric name"),
    ],
)
def test_malformed_conditions_are_rejected_with_a_clear_reason(text: str, reason: str) -> None:
    with pytest.raises(ConditionSyntaxError) as caught:
        parse_condition(text)
    assert reason in str(caught.value)


def test_error_points_at_the_offending_position() -> None:
    with pytest.raises(ConditionSyntaxError) as caught:
        parse_condition("score < 0.5 and mean(latency_ms > 3")
    assert caught.value.position == len("score < 0.5 and mean(latency_ms ")


def test_consumer_defined_metrics_parse_to_their_canonical_form() -> None:
    text = 'ratio(count({model="large"}), count()) > 0.5'
    operand = parse_condition(text).operand  # type: ignore[union-attr]
    assert operand.aggregate == "ratio"
    assert operand.terms[0].selector == (Match("model", "=", "large"),)
    assert operand.key == 'ratio(count({model="large"}), count())'
    assert str(parse_condition("avg(confidence) < 0.5")) == "mean(confidence) < 0.5"
    q = parse_condition("percentile(latency_ms{instance!='a-1'}, 90) > 3").operand  # type: ignore[union-attr]
    assert (q.q, str(q)) == (90.0, 'percentile(latency_ms{instance!="a-1"}, 90)')
    assert parse_condition("count > 3").operand == Operand("count")  # type: ignore[union-attr]
