"""Parameter and state checks shared by the detectors.

Constructors only store their parameters, but a bad parameter should fail where it was written
rather than at the first ``score`` call deep inside a control loop, so the constructors call
these checks and raise ``ValueError`` for what cannot work.
"""

from __future__ import annotations

import math
from numbers import Integral, Real


def check_int(value: object, what: str, *, minimum: int) -> None:
    """``value`` must be an integer (not a bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, Integral) or int(value) < minimum:
        raise ValueError(f"{what} must be an integer >= {minimum}, got {value!r}")


def check_real(
    value: object,
    what: str,
    *,
    low: float = -math.inf,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    """``value`` must be a finite real number in the interval from ``low`` to ``high``."""
    ok = False
    if isinstance(value, Real) and not isinstance(value, bool):
        number = float(value)
        ok = (
            math.isfinite(number)
            and (number > low if low_open else number >= low)
            and (number < high if high_open else number <= high)
        )
    if not ok:
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        raise ValueError(
            f"{what} must be a finite number in {left}{low}, {high}{right}, got {value!r}"
        )


def check_fitted(detector: object, attribute: str) -> None:
    """Raise the ``RuntimeError`` every detector gives when it is used before ``fit``."""
    if not hasattr(detector, attribute):
        raise RuntimeError(f"{type(detector).__name__} is not fitted yet: call fit() first")
