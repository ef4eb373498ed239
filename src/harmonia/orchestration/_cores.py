"""Per-core fit: a replica's per-core demands go to distinct cores of a node.

ROHE's test sorts the node's free cores against the replica's sorted demands. We assign the
largest demand first to the smallest free core that holds it, and so on: this succeeds
exactly when some assignment exists (a swap argument: the largest demand can always take the
tightest core that fits it), and it keeps the roomiest cores free for later replicas.

>>> fit_cores([1000, 300, 1000, 50], [1000, 50, 50])
[0, 3, 1]
>>> fit_cores([1000, 40], [1000, 50]) is None
True
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from heapq import nlargest


def fit_cores(free: Sequence[int], demands: Sequence[int]) -> list[int] | None:
    """The core (index into ``free``) for each demand, in the demands' order; None when the
    demands cannot go to distinct cores."""
    if len(demands) > len(free):
        return None
    if not demands:
        return []
    ranked = sorted(range(len(free)), key=lambda i: (free[i], i))
    sizes = [free[i] for i in ranked]
    chosen: list[int] = [0] * len(demands)
    for d in sorted(range(len(demands)), key=lambda i: -demands[i]):
        at = bisect_left(sizes, demands[d])
        if at == len(sizes):
            return None
        chosen[d] = ranked.pop(at)
        sizes.pop(at)
    return chosen


def cores_fit(free: Sequence[int], demands: Sequence[int]) -> bool:
    """Whether `fit_cores` would succeed, faster: the k-th largest demand against the k-th
    largest free core, for every k (``demands`` sorted largest first, as a service's are
    checked many times).

    >>> cores_fit([1000, 40], [1000, 50])
    False
    """
    if len(demands) > len(free):
        return False
    largest = nlargest(len(demands), free)
    return all(d <= f for d, f in zip(demands, largest, strict=True))


def take_cores(free: list[int], demands: Sequence[int]) -> bool:
    """Fit ``demands`` and subtract them from ``free`` in place; False (``free`` untouched)
    when they do not fit."""
    chosen = fit_cores(free, demands)
    if chosen is None:
        return False
    for core, demand in zip(chosen, demands, strict=True):
        free[core] -= demand
    return True


def pack_cores(capacity: Sequence[int], replicas: Sequence[Sequence[int]]) -> bool:
    """Whether all ``replicas`` (each a list of per-core demands) fit on cores of
    ``capacity``: `assign_cores` finds a packing."""
    return assign_cores(capacity, replicas) is not None


def assign_cores(
    capacity: Sequence[int], replicas: Sequence[Sequence[int]]
) -> list[list[int]] | None:
    """Cores for every demand of every replica, each replica's on distinct cores, or None.

    Tries replica by replica, largest first (as `take_cores` would), then every demand of
    every replica at once, largest first, each to the tightest core that fits and holds no
    other demand of its replica. Neither is exact, each finds packings the other misses.
    """
    ranked = sorted(range(len(replicas)), key=lambda r: (-max(replicas[r], default=0), r))
    free = list(capacity)
    chosen: list[list[int]] = [[] for _ in replicas]
    for r in ranked:
        cores = fit_cores(free, replicas[r])
        if cores is None:
            break
        for core, demand in zip(cores, replicas[r], strict=True):
            free[core] -= demand
        chosen[r] = cores
    else:
        return chosen
    free = list(capacity)
    chosen = [[-1] * len(demands) for demands in replicas]
    demands = sorted(
        ((d, r, i) for r, ds in enumerate(replicas) for i, d in enumerate(ds)),
        key=lambda item: (-item[0], item[1], item[2]),
    )
    for demand, r, i in demands:
        taken = set(chosen[r])
        best = -1
        for core, room in enumerate(free):
            if room >= demand and core not in taken and (best < 0 or room < free[best]):
                best = core
        if best < 0:
            return None
        free[best] -= demand
        chosen[r][i] = best
    return chosen


def alone_count(capacity: Sequence[int], demands: Sequence[int], limit: int) -> int:
    """How many replicas of one demand vector fit on empty cores, up to ``limit``."""
    if not demands:
        return limit
    free = list(capacity)
    count = 0
    while count < limit and take_cores(free, demands):
        count += 1
    return count
