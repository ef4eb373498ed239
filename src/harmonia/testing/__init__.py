"""The public conformance kit: the checks every plugin of a kind must pass.

In the manner of scikit-learn's ``check_estimator``: ``check_strategy``,
``check_drift_detector``, ``check_energy_meter``, ``check_observer``,
``check_artifact_store`` and ``check_placer`` run every check against one plugin and raise an
`AssertionError` that names the plugin and the failed check; ``strategy_checks``,
``drift_detector_checks``, ``energy_meter_checks``, ``observer_checks``,
``artifact_store_checks`` and ``placer_checks`` return the checks one
by one (each a `Check`, called with no arguments) for a test runner to
parametrise over. Harmonia's own tests
run exactly these checks over every registered plugin.

No test framework is needed: the kit imports nothing beyond what the plugin kind does.

>>> from harmonia.testing import check_strategy
>>> check_strategy("single")
"""

from harmonia.testing._artifact_stores import artifact_store_checks, check_artifact_store
from harmonia.testing._check import Check
from harmonia.testing._drift import (
    DriftData,
    blurred_image_data,
    check_drift_detector,
    drift_detector_checks,
    image_data,
    scalar_data,
    textured_images,
)
from harmonia.testing._energy import busy_work, check_energy_meter, energy_meter_checks
from harmonia.testing._observers import (
    LatencyStream,
    check_observer,
    latency_stream,
    observer_checks,
)
from harmonia.testing._placers import check_placer, placer_checks
from harmonia.testing._strategies import check_strategy, strategy_checks

__all__ = [
    "Check",
    "DriftData",
    "LatencyStream",
    "artifact_store_checks",
    "blurred_image_data",
    "busy_work",
    "check_artifact_store",
    "check_drift_detector",
    "check_energy_meter",
    "check_observer",
    "check_placer",
    "check_strategy",
    "drift_detector_checks",
    "energy_meter_checks",
    "image_data",
    "latency_stream",
    "observer_checks",
    "placer_checks",
    "scalar_data",
    "strategy_checks",
    "textured_images",
]
