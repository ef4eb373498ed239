"""Every registered placer passes the public conformance kit (`harmonia.testing`), check by
check: the project runs exactly what a plugin author runs with ``check_placer``."""

from __future__ import annotations

from typing import Any

import pytest

from harmonia.plugins import PLACERS, plugin_names
from harmonia.testing import Check, placer_checks

NAMES = plugin_names(PLACERS)
#: a short time limit keeps the solver's checks quick; its small cases solve well within it
PARAMS: dict[str, dict[str, Any]] = {"optimal": {"time_limit_s": 5.0, "workers": 2}}


def test_every_built_in_placer_is_registered() -> None:
    assert {"first-fit", "best-fit", "worst-fit", "optimal"} <= set(NAMES)


@pytest.mark.parametrize(
    "check", [c for n in NAMES for c in placer_checks(n, PARAMS.get(n))], ids=str
)
def test_placer(check: Check) -> None:
    check()
