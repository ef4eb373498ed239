"""Harmonica's ``dynamic_logic``: a threshold that follows the metric's own history.

Harmonica reads ``"historic_avg * 1.3"`` by splitting on ``*`` and multiplying the mean of
every value recorded so far (the current one included) by the factor; a violation must pass
both the static threshold and this one. Harmonia reads a small grammar instead of splitting
text, and never evaluates it as code::

    dynamic_logic := STATISTIC [ ("*" | "+" | "-") NUMBER ]
    STATISTIC     := historic_avg | historic_mean | historic_median | historic_min | historic_max

>>> threshold = parse_dynamic("historic_avg * 1.3")
>>> threshold.value([20, 21, 22, 40])
33.475
>>> parse_dynamic("historic_max + 2").value([1, 5])
7.0
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

STATISTICS: dict[str, Callable[[Sequence[float]], float]] = {
    "historic_avg": statistics.fmean,
    "historic_mean": statistics.fmean,
    "historic_median": statistics.median,
    "historic_min": min,
    "historic_max": max,
}
_OPERATIONS: dict[str, Callable[[float, float], float]] = {
    "*": lambda a, b: a * b,
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
}
_NUMBER = r"[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?|\.[0-9]+(?:[eE][-+]?[0-9]+)?"
_GRAMMAR = re.compile(rf"^\s*([a-z_]+)\s*(?:([*+-])\s*({_NUMBER})\s*)?$")
GRAMMAR_HELP = (
    "expected a statistic of the metric's history ("
    + ", ".join(STATISTICS)
    + "), optionally followed by * + or - and a number, such as 'historic_avg * 1.3'"
)


class DynamicLogicError(ValueError):
    """``dynamic_logic`` outside the grammar; the message says what is expected."""


@dataclass(frozen=True)
class DynamicThreshold:
    """``statistic(history) <operator> operand``, parsed from ``dynamic_logic``."""

    statistic: str
    operator: str = "*"
    operand: float = 1.0

    def value(self, history: Sequence[float]) -> float | None:
        """The threshold over ``history`` (None with no history: Harmonica then keeps the
        static threshold alone)."""
        if not history:
            return None
        return _OPERATIONS[self.operator](STATISTICS[self.statistic](history), self.operand)


def parse_dynamic(text: str) -> DynamicThreshold:
    """Read ``dynamic_logic`` or raise `DynamicLogicError`."""
    if not isinstance(text, str) or len(text) > 200:
        raise DynamicLogicError(GRAMMAR_HELP)
    match = _GRAMMAR.match(text)
    if match is None or match.group(1) not in STATISTICS:
        raise DynamicLogicError(f"{GRAMMAR_HELP}; got {text!r}")
    statistic, operator, number = match.groups()
    if operator is None:
        return DynamicThreshold(statistic)
    operand = float(number)
    if not math.isfinite(operand):
        raise DynamicLogicError(f"the number must be finite; got {text!r}")
    return DynamicThreshold(statistic, operator, operand)
