"""Per-core fit: the greedy assignment finds one exactly when one exists."""

from __future__ import annotations

import itertools
import random

import pytest

from harmonia.orchestration._cores import assign_cores, cores_fit, fit_cores


def _exists(free: list[int], demands: list[int]) -> bool:
    return any(
        all(d <= free[c] for d, c in zip(demands, cores, strict=True))
        for cores in itertools.permutations(range(len(free)), len(demands))
    )


@pytest.mark.parametrize("seed", range(200))
def test_fit_cores_is_exact_for_one_replica(seed: int) -> None:
    rng = random.Random(seed)
    free = [rng.choice([0, 50, 100, 200, 500, 800, 950, 1000]) for _ in range(rng.randint(1, 5))]
    demands = [rng.choice([50, 100, 200, 500, 900, 1000]) for _ in range(rng.randint(0, 5))]
    chosen = fit_cores(free, demands)
    assert (
        (chosen is not None)
        == _exists(free, demands)
        == cores_fit(free, sorted(demands, reverse=True))
    )
    if chosen is not None:
        assert len(set(chosen)) == len(chosen)
        assert all(d <= free[c] for d, c in zip(demands, chosen, strict=True))


def test_rohe_s_typical_service_fits_once_on_four_cores() -> None:
    """[100, 5, 5, 5] per cent: a full core and three slivers on other cores."""
    demands = [1000, 50, 50, 50]
    assert assign_cores([1000] * 4, [demands]) is not None
    assert assign_cores([1000] * 4, [demands, demands]) is None


def test_assign_cores_packs_what_replica_by_replica_misses() -> None:
    """Two heavy replicas, then slivers: fitting all demands at once keeps the 200s whole."""
    capacity = [1000] * 6
    replicas = [[1000, 800, 800], [900, 50], [200, 200]]
    assigned = assign_cores(capacity, replicas)
    assert assigned is not None
    load = [0] * len(capacity)
    for demands, cores in zip(replicas, assigned, strict=True):
        assert len(set(cores)) == len(cores)
        for d, c in zip(demands, cores, strict=True):
            load[c] += d
    assert all(used <= 1000 for used in load)
