"""Downsampling closed windows into at most N points, for charts of long ranges.

A dashboard that shows thirty days of a service that closes a window a minute would fetch,
serialize and draw 43,200 windows to fill a chart 1,500 pixels wide at most. Instead the
range is cut into equal spans of time (*buckets*), per service, and each bucket stands for
the windows that ended in it. This module is the arithmetic only (no SQL, no I/O), so that
the rule for each signal is tested on its own; `WindowsMixin.downsampled_windows` feeds it
the rows it streams from the database.

How each signal of a bucket is aggregated, by its name (the monitor's names,
`harmonia.core.monitor.summarize`, and the policy operands'):

- ``count``, ``count(...)``, ``sum(...)``, ``total_*``: summed (they are totals);
- ``max(...)``, and tail percentiles ``pNN(...)`` with NN >= 90 and ``percentile(...)``:
  the **maximum** over the bucket's windows. A bucket's true percentile cannot be rebuilt
  from its windows' percentiles; the maximum is an upper bound of it that keeps a latency
  spike visible at any zoom, where a mean would flatten it;
- ``min(...)``: the minimum;
- ``drift.*``: the maximum, so that a window whose drift crossed a threshold still crosses
  it once downsampled;
- everything else (means, ``p50``, quality, accuracy, R², MAE, energy per inference, score,
  rates): the **mean weighted by each window's sample count**, which is the mean over the
  bucket's samples for signals that are means over a window's samples.

A window without a value for a signal (``null``: no labelled sample, no detector yet) is left
out of that signal's aggregate; a bucket where no window had one reads ``null``.

A bucket keeps the span of its windows (the first start, the last end), the sum of their
sample counts, how many windows it stands for (``windows``), and the model that served
most samples in it (``model``, with the version of it that served most, and ``model_count``,
how many samples that model served), and says ``downsampled: true``.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

How = Literal["mean", "max", "min", "sum"]

#: the most points one answer may ask for (a chart is at most a few thousand pixels wide)
MAX_POINTS = 5000
#: ``agg(...)``: the aggregate a policy operand's signal name starts with
_AGGREGATE = re.compile(r"^([a-z]+)(\d*)\(")
#: percentiles from this one up are tails: their maximum is kept, not their mean
TAIL_PERCENTILE = 90


@functools.lru_cache(maxsize=4096)
def how_to_aggregate(key: str) -> How:
    """How a bucket aggregates the signal named ``key`` over its windows (see the module's
    docstring for why each). Cached: a range repeats the same dozen names per window."""
    if key == "count" or key.startswith("total_"):
        return "sum"
    if key.startswith("drift."):
        return "max"
    match = _AGGREGATE.match(key)
    if match is None:
        return "mean"
    name, digits = match.groups()
    if name in ("sum", "count"):
        return "sum"
    if name in ("max", "percentile"):
        return "max"
    if name == "min":
        return "min"
    if name == "p" and digits and int(digits) >= TAIL_PERCENTILE:
        return "max"
    return "mean"


@dataclass
class Bucket:
    """The windows of one service that ended in one span of time, aggregated as they come
    (constant memory per bucket, whatever number of windows it stands for)."""

    service: str
    start: float = math.inf
    end: float = -math.inf
    windows: int = 0
    count: int = 0
    #: signal -> sum of value x weight, and sum of weights, for weighted means
    _sums: dict[str, float] = field(default_factory=dict)
    _weights: dict[str, float] = field(default_factory=dict)
    #: signal -> running max, min or sum
    _folded: dict[str, float] = field(default_factory=dict)
    #: signals seen without a value (null, NaN): they read null if no window had one
    _empty: set[str] = field(default_factory=set)
    #: (model, version) -> samples served
    _served: dict[tuple[str, int | None], int] = field(default_factory=dict)

    def add(self, window: Mapping[str, Any]) -> None:
        """Fold one closed window (a row of `WINDOW_COLUMNS`) into the bucket. The hot loop
        of a long range (a dozen signals a window, tens of thousands of windows): plain
        dictionary arithmetic, each signal's rule looked up once per name."""
        count = int(window["count"] or 0)
        start, end = float(window["start"]), float(window["end"])
        if start < self.start:
            self.start = start
        if end > self.end:
            self.end = end
        self.windows += 1
        self.count += count
        served = (str(window["model"]), window["version"])
        self._served[served] = self._served.get(served, 0) + count
        weight = float(count if count > 0 else 1)
        sums, weights, folded = self._sums, self._weights, self._folded
        for key, raw in (window["signals"] or {}).items():
            if raw is None or raw != raw:  # null, or NaN (never equal to itself)
                self._empty.add(key)
                continue
            value = float(raw)
            how = how_to_aggregate(key)
            if how == "mean":
                sums[key] = sums.get(key, 0.0) + value * weight
                weights[key] = weights.get(key, 0.0) + weight
                continue
            before = folded.get(key)
            if before is None:
                folded[key] = value
            elif how == "max":
                if value > before:
                    folded[key] = value
            elif how == "min":
                if value < before:
                    folded[key] = value
            else:
                folded[key] = before + value

    def signals(self) -> dict[str, float | None]:
        """Each signal's aggregate (None where no window of the bucket had a value)."""
        out: dict[str, float | None] = dict.fromkeys(self._empty)
        for key, total in self._sums.items():
            out[key] = total / self._weights[key]
        out.update(self._folded)
        return dict(sorted(out.items()))

    def model(self) -> tuple[str, int | None, int]:
        """The model that served most samples, its version that served most of them, and
        how many samples that model served (ties: the first seen)."""
        per_model: dict[str, int] = {}
        for (model, _), samples in self._served.items():
            per_model[model] = per_model.get(model, 0) + samples
        best = max(per_model, key=lambda m: per_model[m])
        version = max(
            (v for m, v in self._served if m == best), key=lambda v: self._served[best, v]
        )
        return best, version, per_model[best]

    def as_dict(self) -> dict[str, Any]:
        """The bucket as the windows route answers it (`WindowOut`, downsampled)."""
        model, version, served = self.model()
        return {
            "service": self.service,
            "start": self.start,
            "end": self.end,
            "model": model,
            "version": version,
            "count": self.count,
            "signals": self.signals(),
            "downsampled": True,
            "windows": self.windows,
            "model_count": served,
        }


@dataclass(frozen=True)
class Grid:
    """Equal spans of time over [``low``, ``high``] (window ends), ``buckets`` of them: which
    span a window that ended at ``end`` falls in."""

    low: float
    high: float
    buckets: int

    def index(self, end: float) -> int:
        if self.high <= self.low or self.buckets <= 1:
            return 0
        step = (self.high - self.low) / self.buckets
        return min(max(int((end - self.low) // step), 0), self.buckets - 1)


def downsample(
    windows: Iterable[Mapping[str, Any]], grids: Mapping[str, Grid]
) -> list[dict[str, Any]]:
    """Aggregate ``windows`` (rows of `WINDOW_COLUMNS`, in any order, read once) into the
    buckets of their service's grid; the non-empty buckets, by end, then service. Memory
    holds one `Bucket` per non-empty bucket, never the windows."""
    buckets: dict[tuple[str, int], Bucket] = {}
    for window in windows:
        service = str(window["service"])
        grid = grids.get(service)
        if grid is None:
            continue
        key = (service, grid.index(float(window["end"])))
        bucket = buckets.get(key)
        if bucket is None:
            bucket = buckets[key] = Bucket(service)
        bucket.add(window)
    ordered = sorted(buckets.values(), key=lambda b: (b.end, b.service))
    return [b.as_dict() for b in ordered]


def buckets_per_service(points: int, services: int) -> int:
    """How many buckets each service gets so that the answer holds at most ``points``
    (at least one each: an app of more services than points gets one per service)."""
    return max(1, points // max(services, 1))
