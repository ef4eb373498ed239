"""Summary statistics of a metric over a window: count, mean, std, p50/p95/p99, min, max.

With one metric the fields are ``count``, ``mean``, ``std``, ``p50``, ``p95``, ``p99``,
``min``, ``max``; with several, each is prefixed by its metric (``energy_j_mean``). A window
without values gives ``count`` 0 and nothing else.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from harmonia.observation._protocol import ObserverResult, Window


def summarise(values: np.ndarray) -> dict[str, float]:
    """The statistics of the finite ``values``."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return {"count": 0.0}
    p50, p95, p99 = np.percentile(finite, [50, 95, 99])
    return {
        "count": float(finite.size),
        "mean": float(finite.mean()),
        "std": float(finite.std()),
        "p50": float(p50),
        "p95": float(p95),
        "p99": float(p99),
        "min": float(finite.min()),
        "max": float(finite.max()),
    }


class SummaryObserver:
    """Descriptive statistics; flags nothing."""

    name: ClassVar[str] = "summary"
    streaming: ClassVar[bool] = False

    def observe(self, window: Window) -> ObserverResult:
        values: dict[str, float] = {}
        for metric in window.metrics:
            stats = summarise(window.values(metric))
            prefix = "" if len(window.metrics) == 1 else metric.replace(".", "_") + "_"
            values.update({prefix + key: value for key, value in stats.items()})
        first = summarise(window.values())
        if first.get("count"):
            line = (
                f"summary of {window.metrics[0]}: n={first['count']:.0f} "
                f"mean={first['mean']:.4g} p95={first['p95']:.4g} max={first['max']:.4g}"
            )
        else:
            line = f"summary of {window.metrics[0]}: no values"
        return window.result(values, (), line)
