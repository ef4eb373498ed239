"""Every registered observer passes the public conformance kit (`harmonia.testing`)."""

from __future__ import annotations

import pytest

from harmonia.plugins import OBSERVERS, plugin_names
from harmonia.testing import Check, check_observer, observer_checks

NAMES = plugin_names(OBSERVERS)
BUILT_IN = {"summary", "correlation", "isolation_forest", "lof", "half_space_trees"}

# valid, non-default values of every parameter, and a value each must reject
PARAMS = {
    "isolation_forest": (
        {"contamination": 0.05, "n_estimators": 50, "min_samples": 10, "random_state": 3},
        {"contamination": 0.9},
    ),
    "lof": ({"n_neighbors": 10, "contamination": "auto", "min_samples": 5}, {"n_neighbors": 0}),
    "half_space_trees": (
        {"n_trees": 5, "height": 6, "window_size": 50, "threshold": 0.9, "seed": 1},
        {"threshold": 2.0},
    ),
    "correlation": (
        {"left": "pre", "right": "model", "method": "spearman", "min_pairs": 5},
        {"method": "kendall"},
    ),
    "summary": ({}, None),
}


def test_the_built_in_observers_are_registered() -> None:
    assert set(NAMES) >= BUILT_IN


def _checks(name: str) -> list[Check]:
    params, invalid = PARAMS.get(name, (None, None))
    return observer_checks(name, params=params, invalid=invalid)


# each observer's own checks (one without parameters has no invalid-parameter check)
CASES = [(name, check) for name in NAMES for check in _checks(name)]


@pytest.mark.parametrize(("name", "check"), CASES, ids=[f"{n}-{c.name}" for n, c in CASES])
def test_observer(name: str, check: Check) -> None:
    check()


def test_check_observer_runs_them_all() -> None:
    check_observer("summary")


def test_a_broken_observer_fails_with_its_name_and_the_check() -> None:
    class Broken:
        name = "broken"
        streaming = False

        def __init__(self, level: int = 1) -> None:
            self.level = level
            self.fitted_ = True

        def observe(self, window: object) -> object:
            return None

    with pytest.raises(AssertionError, match="broken: check constructor_only_stores"):
        check_observer(Broken)
