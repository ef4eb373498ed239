"""Every registered drift detector passes the public conformance kit (`harmonia.testing`),
check by check: the project runs exactly what a plugin author runs with
``check_drift_detector``.

The kit needs, per detector, valid non-default values of every constructor parameter, one
value the constructor must reject, and the data it reads (scalars, or batches of images);
the built-in detectors' are here.
"""

from __future__ import annotations

from typing import Any

import pytest

from harmonia.plugins import DRIFT_DETECTORS, plugin_names
from harmonia.testing import (
    Check,
    blurred_image_data,
    drift_detector_checks,
    image_data,
    scalar_data,
)

NAMES = plugin_names(DRIFT_DETECTORS)
BUILT_IN: dict[str, dict[str, Any]] = {
    "kl": {
        "params": {"bins": 20, "threshold": 0.5, "epsilon": 1e-5, "shared_edges": True},
        "invalid": {"bins": 0},
    },
    "psi": {"params": {"bins": 5, "threshold": 0.1}, "invalid": {"threshold": -1.0}},
    "js": {"params": {"bins": 30, "threshold": 0.3}, "invalid": {"threshold": 2.0}},
    "ks": {"params": {"alpha": 0.01}, "invalid": {"alpha": 1.5}},
    "adwin": {"params": {"delta": 0.01}, "invalid": {"delta": 0.0}},
    "page_hinkley": {
        "params": {
            "min_instances": 10,
            "delta": 0.01,
            "threshold": 80.0,
            "alpha": 0.999,
            "mode": "up",
        },
        "invalid": {"mode": "sideways"},
    },
    "luminance": {
        "params": {"bins": 16, "threshold": 0.2, "dark_drop": 0.1, "fog_contrast_ratio": 0.5},
        "invalid": {"bins": 1},
        "data": image_data,
    },
    "sharpness": {
        "params": {"threshold": 0.3},
        "invalid": {"threshold": 0.0},
        "data": blurred_image_data,
    },
}


def test_every_built_in_detector_is_registered() -> None:
    assert set(BUILT_IN) <= set(NAMES)


def _checks(name: str) -> list[Check]:
    hints = {"data": scalar_data, **BUILT_IN.get(name, {})}
    return drift_detector_checks(name, **hints)


@pytest.mark.parametrize("check", [c for n in NAMES for c in _checks(n)], ids=str)
def test_drift_detector(check: Check) -> None:
    check()
