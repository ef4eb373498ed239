"""Every registered strategy passes the public conformance kit (`harmonia.testing`), check by
check: the project runs exactly what a plugin author runs with ``check_strategy``."""

from __future__ import annotations

import pytest

from harmonia.plugins import STRATEGIES, plugin_names
from harmonia.testing import Check, strategy_checks

NAMES = plugin_names(STRATEGIES)


def test_the_built_in_strategies_are_registered() -> None:
    assert {"single", "switch", "harmone", "harmonia"} <= set(NAMES)


@pytest.mark.parametrize("check", [c for n in NAMES for c in strategy_checks(n)], ids=str)
def test_strategy(check: Check) -> None:
    check()
