"""PeMS traffic flow: the shipped series, lag windows, and the known drift regions.

The data (see ``data/NOTICE.md``) is one column, ``flow``: vehicles per 5 minutes. A model
forecasts the next value from the previous ``LOOKBACK`` values.
"""

from __future__ import annotations

import csv
import math
from importlib import resources
from pathlib import Path

import numpy as np

from harmonia.core.errors import HarmoniaError

LOOKBACK = 5
DATA = resources.files("harmonia.systems.traffic") / "data"
TRAIN = "flow_data_train.csv"
TEST = "flow_data_test.csv"
TEST_NO_DRIFT = "flow_data_test_no_drift.csv"


class DataError(HarmoniaError, ValueError):
    """A data file cannot be used; the message names the file and what is wrong."""


def shipped(name: str) -> Path:
    """Path of a data file shipped with the package."""
    return Path(str(DATA / name))


def load_flow(path: str | Path) -> np.ndarray:
    """The ``flow`` column of a CSV file as floats, or a `DataError` naming the problem."""
    file = Path(path)
    try:
        with file.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames is None or "flow" not in reader.fieldnames:
                found = ", ".join(reader.fieldnames or []) or "none"
                raise DataError(f"{file}: no 'flow' column (columns found: {found})")
            values = []
            for line, row in enumerate(reader, start=2):
                try:
                    value = float(row["flow"])
                except (TypeError, ValueError):
                    raise DataError(
                        f"{file}, line {line}: flow {row['flow']!r} is not a number"
                    ) from None
                if not math.isfinite(value):
                    raise DataError(f"{file}, line {line}: flow must be finite")
                values.append(value)
    except OSError as error:
        raise DataError(f"{file}: cannot read ({error.strerror or error})") from None
    if len(values) <= LOOKBACK:
        raise DataError(f"{file}: {len(values)} rows; at least {LOOKBACK + 1} are needed")
    return np.asarray(values, dtype=float)


def lag_windows(series: np.ndarray, lookback: int = LOOKBACK) -> tuple[np.ndarray, np.ndarray]:
    """Inputs ``X[i] = series[i : i + lookback]`` and targets ``y[i] = series[i + lookback]``.

    >>> X, y = lag_windows(np.arange(7.0), lookback=5)
    >>> X.tolist(), y.tolist()
    ([[0.0, 1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0, 5.0]], [5.0, 6.0])
    """
    windows = np.lib.stride_tricks.sliding_window_view(series[:-1], lookback)
    return np.ascontiguousarray(windows), series[lookback:].copy()


def drift_regions(
    drifted: np.ndarray, clean: np.ndarray, *, gap: int = 10
) -> list[tuple[int, int]]:
    """[start, end) ranges where ``drifted`` differs from ``clean``; gaps up to ``gap`` merge.

    >>> drift_regions(np.array([0, 1, 1, 0, 1, 0, 0]), np.zeros(7), gap=1)
    [(1, 5)]
    """
    if drifted.shape != clean.shape:
        return []
    changed = np.flatnonzero(np.abs(drifted - clean) > 1e-9)
    regions: list[tuple[int, int]] = []
    for index in changed.tolist():
        if regions and index - regions[-1][1] <= gap:
            regions[-1] = (regions[-1][0], index + 1)
        else:
            regions.append((index, index + 1))
    return regions
