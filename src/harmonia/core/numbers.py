"""What counts as a number in what users and systems send: an int or a float, never a bool.

JSON, YAML and Python all let ``true`` pass for 1; a metric, a threshold or a setting that
reads ``true`` is a mistake to report, not a 1 to compute with. Every such check uses these.

>>> is_number(3), is_number(2.5), is_number(True), is_number("3")
(True, True, False, False)
>>> number_or_nan(True), number_or_nan(4)
(nan, 4.0)
"""

from __future__ import annotations

import math
from typing import TypeGuard

__all__ = ["is_number", "number_or_nan"]


def is_number(value: object) -> TypeGuard[int | float]:
    """An int or a float, not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def number_or_nan(value: object) -> float:
    """``value`` as a float where it `is_number`, else NaN (a metric not stored, or not a
    number)."""
    return float(value) if is_number(value) else math.nan
