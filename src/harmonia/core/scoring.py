"""The score that trades quality against energy, HarmonE's form.

>>> from harmonia.core.policy import Objective
>>> objective = Objective()  # β = 0.95, E range [0, 25 mJ]
>>> round(score(0.9, 0.0125, objective), 4)  # 0.95·0.9 + 0.05·(1 − 0.5)
0.88
"""

from __future__ import annotations

import math

from harmonia.core.policy import Objective


def normalize_energy(energy_j: float, energy_range_j: tuple[float, float]) -> float:
    """Energy per inference mapped to [0, 1] on the policy's range, clamped at both ends.

    HarmonE did not clamp, so one expensive window could push the score far below zero.
    """
    low, high = energy_range_j
    return min(1.0, max(0.0, (energy_j - low) / (high - low)))


def energy_price(joules_per_inference: float, objective: Objective) -> float:
    """What spending ``joules_per_inference`` more per inference costs in score, at the
    objective's rate: the energy weight times that energy over the energy range, unclamped
    (a retrain's energy spread over the inferences it serves, priced against the score it
    wins back).

    >>> from harmonia.core.policy import Objective
    >>> round(energy_price(0.0025, Objective()), 4)  # 0.05 · 2.5 mJ / 25 mJ
    0.005
    """
    low, high = objective.energy_range_j
    return objective.weights.energy * joules_per_inference / (high - low)


def score(quality: float, energy_j: float, objective: Objective) -> float:
    """``S = w_q·quality + w_e·(1 − E_norm)``; NaN when either input is unknown."""
    if math.isnan(quality) or math.isnan(energy_j):
        return math.nan
    energy_norm = normalize_energy(energy_j, objective.energy_range_j)
    weights = objective.weights
    return weights.quality * quality + weights.energy * (1.0 - energy_norm)
