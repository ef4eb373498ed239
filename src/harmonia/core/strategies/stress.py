"""Reading a version's stress test: its quality under known conditions, stored with it.

A system may measure each version under the conditions its data is known to meet (the
vision system: dark, fog, noise and blur, mild and strong) and store, as flat metrics of the
version, ``context.<condition>.<quality>`` (the quality there, in the metric the objective
names) and the mean of each input feature on the data it was measured on:
``context.<condition>.drift_mean`` for the drift value the detectors watch, and
``context.<condition>.<feature>_mean`` for each other feature the policy's
``drift.features`` names (the vision system: ``sharpness``). For those other features the
version also stores their mean and standard deviation on its own training data,
``inputs.<feature>_mean`` and ``inputs.<feature>_std`` (the drift value's come from its
fingerprint). A strategy then reads, from inputs alone, which condition the data is in and
what each model promises there. Pure functions: no engine, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from itertools import pairwise

import numpy as np

from harmonia.core.numbers import is_number, number_or_nan

#: standard errors by which a few values' mean must stray from a version's own data before
#: they are taken for a tested condition (five images may be darker than most by their
#: digits alone)
SIGNIFICANT = 3.0
#: the feature name of the value the drift detectors watch (``drift_value`` by default)
DRIFT = "drift"
_TINY = 1e-12


def conditions(metadata: Mapping[str, object], quality: str) -> dict[str, float]:
    """A version's stress test: each condition's promised ``quality`` (empty where the
    version stored none)."""
    found: dict[str, float] = {}
    for key, value in metadata.items():
        parts = key.split(".")
        if len(parts) != 3 or parts[0] != "context" or parts[2] != quality:
            continue
        if is_number(value):
            found[parts[1]] = float(value)
    return found


def feature_means(metadata: Mapping[str, object], condition: str) -> dict[str, float]:
    """The mean of each input feature on the data ``condition`` was tested on."""
    prefix = f"context.{condition}."
    return {
        key[len(prefix) : -len("_mean")]: float(value)
        for key, value in metadata.items()
        if key.startswith(prefix) and key.endswith("_mean") and is_number(value)
    }


def own_inputs(
    metadata: Mapping[str, object], fingerprint: Sequence[float]
) -> dict[str, tuple[float, float]]:
    """Mean and standard deviation of each input feature on the version's own training
    data: the drift value's from its quantile sketch, the others' as stored."""
    found: dict[str, tuple[float, float]] = {}
    if len(fingerprint):
        own = np.asarray(fingerprint, dtype=float)
        found[DRIFT] = (float(own.mean()), float(own.std()))
    for key, value in metadata.items():
        parts = key.split(".")
        if len(parts) != 2 or parts[0] != "inputs" or not parts[1].endswith("_mean"):
            continue
        feature = parts[1][: -len("_mean")]
        spread = metadata.get(f"inputs.{feature}_std")
        if is_number(value) and is_number(spread):
            found[feature] = (float(value), float(spread))
    return found


def condition_of(
    values: Mapping[str, np.ndarray],
    metadata: Mapping[str, object],
    fingerprint: Sequence[float],
    quality: str,
) -> tuple[str, float] | None:
    """The tested condition that the inputs look like, and the ``quality`` the version
    promises there. ``values`` maps each feature (`DRIFT` for the drift value) to the
    window's values of it.

    Distances are measured in each feature's standard deviations on the version's own
    data, over the features that the stress test, the own data and the window all have.
    None where the version has no stress test, or the window looks like the version's own
    data: nearer its means than any condition's, or within `SIGNIFICANT` standard errors
    of them. Without own statistics it is the condition nearest by drift value alone.

    >>> meta = {"context.dark.accuracy": 0.9, "context.dark.drift_mean": 20.0}
    >>> condition_of({"drift": np.full(5, 22.0)}, meta, [90.0, 100.0, 110.0], "accuracy")
    ('dark', 0.9)
    >>> condition_of({"drift": np.full(5, 95.0)}, meta, [90.0, 100.0, 110.0], "accuracy") is None
    True
    """
    tested = conditions(metadata, quality)
    here: dict[str, tuple[float, int]] = {}
    for feature, column in values.items():
        read = column[np.isfinite(column)]
        if read.size:
            here[feature] = (float(read.mean()), int(read.size))
    means = {name: feature_means(metadata, name) for name in tested}
    shared = [f for f in here if tested and all(f in m for m in means.values())]
    if not shared:
        return None
    own = own_inputs(metadata, fingerprint)
    scaled = [f for f in shared if f in own]

    def distance(centre: Mapping[str, float], features: Sequence[str], scale: bool) -> float:
        return math.sqrt(
            sum(
                ((here[f][0] - centre[f]) / (max(own[f][1], _TINY) if scale else 1.0)) ** 2
                for f in features
            )
        )

    if not scaled:  # nothing to measure the version's own data by: nearest by drift value
        if DRIFT not in shared:
            return None
        name = min(tested, key=lambda c: distance(means[c], [DRIFT], scale=False))
        return name, tested[name]
    name = min(tested, key=lambda c: distance(means[c], scaled, scale=True))
    centre = {f: own[f][0] for f in scaled}
    away = distance(centre, scaled, scale=True)
    # the window's mean in standard errors from the own data's: chance if within SIGNIFICANT
    errors = math.sqrt(
        sum(((here[f][0] - own[f][0]) / max(own[f][1], _TINY)) ** 2 * here[f][1] for f in scaled)
    )
    if away <= distance(means[name], scaled, scale=True) or errors < SIGNIFICANT:
        return None
    # the promise at the window's strength: along the chain of the condition's kind, from
    # the own data (strength 0) out through its tested strengths
    scales = np.array([max(own[f][1], _TINY) for f in scaled])

    def at(centre: Mapping[str, float]) -> np.ndarray:
        located: np.ndarray = np.array([centre[f] for f in scaled]) / scales
        return located

    origin = at(centre)
    kind = name.split("-")[0]
    steps = sorted(
        (c for c in tested if c.split("-")[0] == kind),
        key=lambda c: float(np.linalg.norm(at(means[c]) - origin)),
    )
    chain = [(origin, _own_quality(metadata, quality))]
    chain += [(at(means[c]), tested[c]) for c in steps]
    return name, _along(at({f: here[f][0] for f in scaled}), chain, tested[name])


def _own_quality(metadata: Mapping[str, object], quality: str) -> float:
    value = metadata.get(quality)
    return number_or_nan(value)


def _along(point: np.ndarray, chain: list[tuple[np.ndarray, float]], nearest: float) -> float:
    """The promise where ``point`` projects onto the polyline through ``chain``'s points
    (linear along a segment, an end's promise beyond it; segments with an unknown promise
    are skipped); ``nearest`` where no segment has both promises."""
    best, promise = math.inf, nearest
    for (a, pa), (b, pb) in pairwise(chain):
        if math.isnan(pa) or math.isnan(pb):
            continue
        span = b - a
        length = float(span @ span)
        t = 0.0 if length == 0 else min(1.0, max(0.0, float((point - a) @ span) / length))
        gap = float(np.linalg.norm(point - (a + t * span)))
        if gap < best:
            best, promise = gap, pa + t * (pb - pa)
    return promise
