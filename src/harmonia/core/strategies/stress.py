"""Reading a version's stress test: its quality under known conditions, stored with it.

A system may measure each version under the conditions its data is known to meet (the
vision system: dark, fog, noise and blur, mild and strong) and store, as flat metrics of the
version, ``context.<condition>.<quality>`` (the quality there, in the metric the objective
names) and ``context.<condition>.drift_mean`` (the mean drift value of the data it was
measured on). A strategy then reads, from inputs alone, which condition the data is in and
what each model promises there. Pure functions: no engine, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

#: standard errors by which a few values' mean must stray from a version's own data before
#: they are taken for a tested condition (five images may be darker than most by their
#: digits alone)
SIGNIFICANT = 3.0


def conditions(metadata: Mapping[str, object], quality: str) -> dict[str, tuple[float, float]]:
    """A version's stress test: each condition's promised ``quality`` and mean drift value
    (empty where the version stored none)."""
    found: dict[str, tuple[float, float]] = {}
    for key, value in metadata.items():
        parts = key.split(".")
        if len(parts) != 3 or parts[0] != "context" or parts[2] != quality:
            continue
        mean = metadata.get(f"context.{parts[1]}.drift_mean")
        numbers = (value, mean)
        if all(isinstance(n, int | float) and not isinstance(n, bool) for n in numbers):
            found[parts[1]] = (float(value), float(mean))  # type: ignore[arg-type]
    return found


def condition_of(
    values: np.ndarray,
    metadata: Mapping[str, object],
    fingerprint: Sequence[float],
    quality: str,
) -> tuple[str, float] | None:
    """The tested condition that drift ``values`` look like, and the ``quality`` the version
    promises there; None where the version has no stress test, or the values look like the
    version's own training data (``fingerprint``, its quantile sketch): nearer its mean than
    any condition's, or within `SIGNIFICANT` standard errors of it.

    >>> meta = {"context.dark.accuracy": 0.9, "context.dark.drift_mean": 20.0}
    >>> condition_of(np.full(5, 22.0), meta, [90.0, 100.0, 110.0], "accuracy")
    ('dark', 0.9)
    >>> condition_of(np.full(5, 95.0), meta, [90.0, 100.0, 110.0], "accuracy") is None
    True
    """
    tested = conditions(metadata, quality)
    read = values[np.isfinite(values)]
    if not tested or read.size == 0:
        return None
    here = float(read.mean())
    name, (promised, mean) = min(tested.items(), key=lambda c: abs(c[1][1] - here))
    if len(fingerprint):
        own = np.asarray(fingerprint, dtype=float)
        away = abs(float(own.mean()) - here)
        chance = SIGNIFICANT * float(own.std()) / math.sqrt(read.size)
        if away <= abs(mean - here) or away < chance:
            return None
    return name, promised
