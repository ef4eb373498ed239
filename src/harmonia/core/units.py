"""Energy as people read it: stored and sent in joules, shown per inference in mJ.

Everything Harmonia keeps or sends carries SI joules: the ``energy_j`` of a sample and of a
window's signals, a version's ``energy_j_per_inference``, ``training_joules`` and
``retrain_joules``, a replay's ``energy_j_per_inference``. What a person reads (decision
reasons, SLO explanations, the CLI's tables, the dashboard) is formatted here, by one rule,
and by its twin in the dashboard (``num``, ``mJ`` and ``joules`` in ``app.js``):

- energy **per inference** (or per request, per frame): millijoules, at most three
  decimals with trailing zeros dropped (``0.0042`` J reads ``4.2 mJ``; below 0.001 mJ in
  the ``1.23e-4 mJ`` form);
- energy **in total** (a training run, a retrain, a measured block of work, a window's
  ``total_energy_j``): joules, at most two decimals, in kJ from 1,000 J and in MJ from a
  million (``40 J``, ``1.2 kJ``); a total under 1 J in mJ, as above (``0.004`` J: ``4 mJ``).

>>> format_mj(0.0042)
'4.2 mJ'
>>> format_mj(1.234e-7)
'1.23e-4 mJ'
>>> format_joules(1234.0)
'1.23 kJ'
>>> format_energy("p95(energy_j)", 0.0125)
'12.5 mJ'
"""

from __future__ import annotations

import math

__all__ = ["format_energy", "format_joules", "format_mj", "format_number", "is_energy"]

#: what stands for a value that is not known (the dashboard shows the same)
MISSING = "—"


def format_number(value: float | None, digits: int = 3) -> str:
    """At most ``digits`` decimals, trailing zeros dropped; a nonzero value too small for
    them in the ``1.23e-4`` form; ``—`` for None or NaN (the dashboard's ``num``)."""
    if value is None or math.isnan(value):
        return MISSING
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    if value != 0 and abs(value) < 10**-digits:
        mantissa, exponent = f"{value:.2e}".split("e")
        return f"{mantissa}e{int(exponent)}"
    text = f"{value:.{digits}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def format_mj(joules: float | None, *, unit: bool = True) -> str:
    """Energy per inference, given in joules, as millijoules: ``0.0042`` -> ``4.2 mJ``.

    ``unit=False`` leaves the unit out, for a table whose header names it (``mJ/inf``).
    """
    if joules is None or math.isnan(joules):
        return MISSING
    text = format_number(joules * 1e3)
    return f"{text} mJ" if unit else text


def format_joules(joules: float | None) -> str:
    """Energy in total: ``40 J``, ``1.2 kJ``, ``3.4 MJ``, under 1 J ``4 mJ`` (the dashboard's
    ``joules``)."""
    if joules is None or math.isnan(joules):
        return MISSING
    if abs(joules) < 1:
        return format_mj(joules)
    if abs(joules) >= 1e6:
        return f"{format_number(joules / 1e6, 2)} MJ"
    if abs(joules) >= 1e3:
        return f"{format_number(joules / 1e3, 2)} kJ"
    return f"{format_number(joules, 2)} J"


def is_energy(signal: str) -> bool:
    """Whether a signal or metadata name holds joules (``energy_j``, ``mean(energy_j)``,
    ``energy_j_per_inference``, ``total_energy_j``, ``training_joules``)."""
    return "energy_j" in signal or signal.endswith("_joules")


def format_energy(signal: str, joules: float | None) -> str:
    """An energy signal's value by the rule: a total (``total_energy_j``, ``*_joules``) in
    J / kJ, anything else (per inference, per request) in mJ."""
    if "total_energy_j" in signal or signal.endswith("_joules"):
        return format_joules(joules)
    return format_mj(joules)
