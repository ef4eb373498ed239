"""Boundary conditions: a small, safe grammar parsed without ``eval``.

A condition compares a signal with a number; comparisons join with ``and``/``or`` and group
with parentheses::

    condition  := or_expr
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := term ("and" term)*
    term       := "(" or_expr ")" | comparison
    comparison := operand OP NUMBER
    operand    := AGGREGATE "(" NAME [selector] ")"
                | "count" "(" [NAME] [selector] ")"
                | "percentile" "(" NAME [selector] "," NUMBER ")"
                | "ratio" "(" operand "," operand ")"
                | NAME ("." NAME)*
    selector   := "{" LABEL ("=" | "!=") STRING ("," LABEL ("=" | "!=") STRING)* "}"
    AGGREGATE  := mean | avg | p50 | p95 | p99 | max | min | rate | sum
    LABEL      := model | instance | service | stage | node
    OP         := < | <= | > | >= | == | !=

A signal is a telemetry metric aggregated over the policy's window (``p95(latency_ms)``; a
bare metric name means its mean), or a derived signal the monitor computes: ``score``,
``quality``, ``energy_norm``, ``energy_j``, ``r2``, ``mae`` and ``drift.<detector>``.
Inside an aggregate a name is always a reported metric: ``mean(score)`` is the mean of a
``score`` the system sent. ``rate(m)`` is the fraction of samples in the window where ``m``
is non-zero (for example an error flag).

Consumer-defined metrics read the same samples: ``count()`` counts them (``count(m)`` those
that carry ``m``), ``sum(m)`` adds ``m`` up, ``percentile(m, 90)`` takes any percentile,
``avg`` is ``mean``, and ``ratio(a, b)`` divides one aggregate by another. A selector in
braces keeps the samples whose labels match, as in PromQL::

    ratio(count({model="large"}), count()) > 0.5
    p99(latency_ms{instance="classify-2"}) > 300
    ratio(sum(error{service!="cache"}), count()) > 0.01

Parsing builds a tree of frozen dataclasses; evaluation looks signals up by their canonical
key in a mapping and never executes anything from the text.

>>> condition = parse_condition("score < 0.78 or p95(latency_ms) > 50")
>>> condition.evaluate({"score": 0.9, "p95(latency_ms)": 61.0}).fired
True
>>> str(condition)
'score < 0.78 or p95(latency_ms) > 50'
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal

from harmonia.core.errors import ConditionSyntaxError

Aggregate = Literal[
    "mean", "p50", "p95", "p99", "max", "min", "rate", "count", "sum", "percentile", "ratio"
]
Comparator = Literal["<", "<=", ">", ">=", "==", "!="]

AGGREGATES: tuple[Aggregate, ...] = (
    "mean", "p50", "p95", "p99", "max", "min", "rate", "count", "sum", "percentile", "ratio"
)  # fmt: skip
#: other names of an aggregate, written in its canonical form
ALIASES: dict[str, Aggregate] = {"avg": "mean"}
#: sample labels a selector can match
LABELS = frozenset({"model", "instance", "service", "stage", "node"})
COMPARATORS: tuple[Comparator, ...] = ("<=", ">=", "==", "!=", "<", ">")
DERIVED_SIGNALS = frozenset({"score", "quality", "energy_norm", "energy_j", "r2", "mae"})
DRIFT_PREFIX = "drift."
#: an observation agent's result: ``observer.<name>.<field>``
OBSERVER_PREFIX = "observer."
#: ``count`` alone is a signal (the window's samples); ``count(...)`` the aggregate
KEYWORDS = frozenset({"and", "or", "not", *AGGREGATES, *ALIASES}) - {"count"}

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_TOKEN = re.compile(
    rf"""
    (?P<space>\s+)
  | (?P<number>[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?)
  | (?P<op><=|>=|==|!=|<|>)
  | (?P<equals>=)
  | (?P<name>{_NAME}(?:\.{_NAME})*)
  | (?P<string>"[^"\\]{{0,200}}"|'[^'\\]{{0,200}}')
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<lbrace>\{{)
  | (?P<rbrace>\}})
  | (?P<comma>,)
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class Match:
    """One label test of a selector: ``label = "value"`` or ``label != "value"``."""

    label: str
    op: Literal["=", "!="]
    value: str

    def holds(self, found: str | None) -> bool:
        return (found == self.value) is (self.op == "=")

    def __str__(self) -> str:
        return f'{self.label}{self.op}"{self.value}"'


@dataclass(frozen=True)
class Operand:
    """What a comparison reads: an aggregate of a metric over the samples a selector keeps,
    a ratio of two such aggregates, or a derived signal."""

    name: str
    aggregate: Aggregate | None = None
    #: the samples it reads: those whose labels pass every test
    selector: tuple[Match, ...] = ()
    #: the percentile of ``percentile(name, q)``
    q: float | None = None
    #: numerator and denominator of ``ratio(a, b)`` (``name`` is empty)
    terms: tuple[Operand, ...] = ()

    @property
    def is_derived(self) -> bool:
        return self.aggregate is None and (
            self.name in DERIVED_SIGNALS or self.name.startswith(DRIFT_PREFIX) or self.is_observer
        )

    @property
    def is_observer(self) -> bool:
        """Whether it reads an observation agent's result (``observer.<name>.<field>``)."""
        return self.aggregate is None and self.name.startswith(OBSERVER_PREFIX)

    @property
    def is_expression(self) -> bool:
        """Whether it is a consumer-defined metric (a count, sum, percentile, ratio or a
        selector) rather than one of the aggregates every window has."""
        return self.aggregate in {"count", "sum", "percentile", "ratio"} or bool(self.selector)

    @property
    def key(self) -> str:
        """Canonical signal key: ``score``, ``drift.kl``, ``mean(latency_ms)``, ``p95(...)``."""
        if self.is_derived:
            return self.name
        if self.aggregate is None:
            return f"mean({self.name})"
        return str(self)

    @property
    def drift_detector(self) -> str | None:
        """The detector a ``drift.<name>`` signal needs, else None."""
        return self.name[len(DRIFT_PREFIX) :] if self.name.startswith(DRIFT_PREFIX) else None

    def __str__(self) -> str:
        if self.aggregate is None:
            return self.name
        if self.aggregate == "ratio":
            return f"ratio({self.terms[0]}, {self.terms[1]})"
        selector = "{" + ", ".join(map(str, self.selector)) + "}" if self.selector else ""
        inner = f"{self.name}{selector}"
        if self.aggregate == "percentile":
            return f"percentile({inner}, {_format_number(self.q or 0.0)})"
        return f"{self.aggregate}({inner})"


@dataclass(frozen=True)
class Evaluation:
    """Whether a condition fired, and the signal values it read (for the explanation)."""

    fired: bool
    values: dict[str, float] = field(default_factory=dict)
    missing: tuple[str, ...] = ()


_COMPARE = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}


@dataclass(frozen=True)
class Comparison:
    """``operand OP threshold``. A missing or NaN signal never fires: no data, no violation."""

    operand: Operand
    op: Comparator
    threshold: float

    def operands(self) -> Iterator[Operand]:
        yield self.operand

    def evaluate(self, signals: Mapping[str, float]) -> Evaluation:
        key = self.operand.key
        value = signals.get(key)
        if value is None or math.isnan(value):
            return Evaluation(False, {}, (key,))
        return Evaluation(bool(_COMPARE[self.op](value, self.threshold)), {key: float(value)})

    def __str__(self) -> str:
        return f"{self.operand} {self.op} {_format_number(self.threshold)}"


@dataclass(frozen=True)
class Junction:
    """Comparisons (or nested junctions) joined by ``and`` or ``or``."""

    op: Literal["and", "or"]
    parts: tuple[Condition, ...]

    def operands(self) -> Iterator[Operand]:
        for part in self.parts:
            yield from part.operands()

    def evaluate(self, signals: Mapping[str, float]) -> Evaluation:
        results = [part.evaluate(signals) for part in self.parts]
        combine = all if self.op == "and" else any
        values: dict[str, float] = {}
        missing: list[str] = []
        for result in results:
            values.update(result.values)
            missing.extend(result.missing)
        return Evaluation(combine(r.fired for r in results), values, tuple(missing))

    def __str__(self) -> str:
        return f" {self.op} ".join(
            f"({part})" if isinstance(part, Junction) else str(part) for part in self.parts
        )


Condition = Comparison | Junction


def _format_number(value: float) -> str:
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    position: int


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise ConditionSyntaxError(text, position, f"unexpected character {text[position]!r}")
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append(_Token(kind, match.group(), position))
        position = match.end()
    tokens.append(_Token("end", "", len(text)))
    return tokens


class _Parser:
    """Recursive descent over the token list; every error points at the offending token."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.index = 0

    @property
    def current(self) -> _Token:
        return self.tokens[self.index]

    def fail(self, reason: str, token: _Token | None = None) -> ConditionSyntaxError:
        return ConditionSyntaxError(self.text, (token or self.current).position, reason)

    def take(self, kind: str, expected: str) -> _Token:
        token = self.current
        if token.kind != kind:
            found = "end of condition" if token.kind == "end" else repr(token.text)
            raise self.fail(f"expected {expected}, found {found}")
        self.index += 1
        return token

    def at_keyword(self, word: str) -> bool:
        return self.current.kind == "name" and self.current.text == word

    def parse(self) -> Condition:
        if self.current.kind == "end":
            raise self.fail("empty condition")
        condition = self.parse_or()
        if self.current.kind != "end":
            raise self.fail(f"unexpected {self.current.text!r} after a complete condition")
        return condition

    def parse_or(self) -> Condition:
        parts = [self.parse_and()]
        while self.at_keyword("or"):
            self.index += 1
            parts.append(self.parse_and())
        return parts[0] if len(parts) == 1 else Junction("or", tuple(parts))

    def parse_and(self) -> Condition:
        parts = [self.parse_term()]
        while self.at_keyword("and"):
            self.index += 1
            parts.append(self.parse_term())
        return parts[0] if len(parts) == 1 else Junction("and", tuple(parts))

    def parse_term(self) -> Condition:
        if self.current.kind == "lparen":
            self.index += 1
            inner = self.parse_or()
            self.take("rparen", "')'")
            return inner
        return self.parse_comparison()

    def parse_comparison(self) -> Comparison:
        operand = self.parse_operand()
        op = self.take("op", "a comparison operator (<, <=, >, >=, ==, !=)")
        number = self.take("number", "a number")
        value = float(number.text)
        if not math.isfinite(value):
            raise self.fail("the threshold must be a finite number", number)
        return Comparison(operand, op.text, value)  # type: ignore[arg-type]

    def parse_operand(self) -> Operand:
        token = self.take("name", "a signal (a metric, an aggregate such as p95(...), or score)")
        word = ALIASES.get(token.text, token.text)
        if word in AGGREGATES and (word != "count" or self.current.kind == "lparen"):
            return self.parse_aggregate(token, word)
        if token.text in KEYWORDS:
            raise self.fail(f"{token.text!r} is a keyword, not a signal", token)
        if self.current.kind == "lparen":
            known = ", ".join((*AGGREGATES, *ALIASES))
            raise self.fail(f"unknown aggregate {token.text!r}; use one of {known}", token)
        if token.text.startswith(OBSERVER_PREFIX):
            if token.text.count(".") != 2 or "" in token.text.split("."):
                raise self.fail(f"{token.text!r}: write observer.<name>.<field>", token)
            return Operand(token.text)
        if "." in token.text and not token.text.startswith(DRIFT_PREFIX):
            raise self.fail(
                f"{token.text!r}: only drift and observer signals have a dotted name "
                "(drift.<detector>, observer.<name>.<field>)",
                token,
            )
        if token.text.startswith(DRIFT_PREFIX) and token.text.count(".") != 1:
            raise self.fail(f"{token.text!r}: write drift.<detector>, e.g. drift.kl", token)
        return Operand(token.text)

    def parse_aggregate(self, token: _Token, aggregate: Aggregate) -> Operand:
        """``AGGREGATE(...)``: a metric with an optional selector, ``count()`` of samples,
        ``percentile(metric, q)`` or ``ratio(a, b)``."""
        self.take("lparen", f"'(' after {token.text}")
        if aggregate == "ratio":
            numerator = self.parse_ratio_term()
            self.take("comma", "',' between the two terms of ratio(a, b)")
            denominator = self.parse_ratio_term()
            self.take("rparen", "')' to close ratio(")
            return Operand("", "ratio", terms=(numerator, denominator))
        name = ""
        if aggregate != "count" or self.current.kind == "name":
            metric = self.take("name", f"a metric name inside {token.text}(...)")
            self._check_metric_name(metric)
            name = metric.text
        selector = self.parse_selector() if self.current.kind == "lbrace" else ()
        q: float | None = None
        if aggregate == "percentile":
            self.take("comma", "',' and the percentile, as in percentile(latency_ms, 90)")
            number = self.take("number", "the percentile, a number from 0 to 100")
            q = float(number.text)
            if not 0.0 <= q <= 100.0:
                raise self.fail("the percentile must be between 0 and 100", number)
        self.take("rparen", f"')' to close {token.text}(")
        return Operand(name, aggregate, selector, q)

    def parse_ratio_term(self) -> Operand:
        start = self.current
        operand = self.parse_operand()
        if operand.aggregate is None or operand.aggregate == "ratio":
            raise self.fail(
                "each term of ratio(a, b) is an aggregate such as count() or sum(error)", start
            )
        return operand

    def parse_selector(self) -> tuple[Match, ...]:
        self.take("lbrace", "'{'")
        tests: list[Match] = []
        while True:
            label = self.take("name", f"a label ({', '.join(sorted(LABELS))})")
            if label.text not in LABELS:
                raise self.fail(
                    f"unknown label {label.text!r}; a selector matches {', '.join(sorted(LABELS))}",
                    label,
                )
            if self.current.kind == "equals":
                op: Literal["=", "!="] = "="
            elif self.current.kind == "op" and self.current.text == "!=":
                op = "!="
            else:
                raise self.fail(f"expected = or != after {label.text}")
            self.index += 1
            value = self.take("string", 'a quoted value, as in model="large"')
            tests.append(Match(label.text, op, value.text[1:-1]))
            if self.current.kind != "comma":
                break
            self.index += 1
        self.take("rbrace", "'}' to close the selector")
        return tuple(tests)

    def _check_metric_name(self, token: _Token) -> None:
        if "." in token.text or token.text in KEYWORDS:
            raise self.fail(f"{token.text!r} is not a telemetry metric name", token)


def parse_condition(text: str) -> Condition:
    """Parse a boundary condition, or raise `ConditionSyntaxError` saying where and why."""
    if not isinstance(text, str):
        raise ConditionSyntaxError(str(text), 0, "a condition must be a string")
    return _Parser(text).parse()
