"""The conformance kit itself: it passes a good plugin, given by name or by class, and fails
a broken one naming the plugin and the check (its import weight: tests/unit/test_public_api)."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from harmonia.core.strategies.single import SingleStrategy
from harmonia.drift import KLDivergenceDetector
from harmonia.energy import EstimateMeter
from harmonia.testing import (
    check_drift_detector,
    check_energy_meter,
    check_strategy,
    drift_detector_checks,
    strategy_checks,
)


def test_a_registered_plugin_passes_by_name_and_by_class() -> None:
    check_strategy("single")
    check_strategy(SingleStrategy)
    check_drift_detector(KLDivergenceDetector)
    check_energy_meter(EstimateMeter())


class Unregistered(SingleStrategy):
    name: ClassVar[str] = "unregistered"


def test_an_unregistered_strategy_fails_naming_itself_and_the_check() -> None:
    with pytest.raises(AssertionError, match="unregistered: check registered_under_its_own_name"):
        check_strategy(Unregistered)


class Forgetful(KLDivergenceDetector):
    """Fit forgets to return self."""

    def fit(self, reference: Any) -> Any:
        super().fit(reference)
        return None


def test_a_broken_detector_fails_naming_the_check() -> None:
    checks = {c.name: c for c in drift_detector_checks(Forgetful)}
    with pytest.raises(AssertionError, match="kl: check fit_returns_self failed"):
        checks["fit_returns_self"]()
    with pytest.raises(AssertionError, match="kl: check registered_under_its_own_name failed"):
        check_drift_detector(Forgetful)  # the entry point "kl" loads another class
    checks = [c.name for c in strategy_checks("single")]
    assert len(checks) == len(set(checks)) >= 5


class LooksAheadBadly(SingleStrategy):
    """Declares a lookahead of no samples."""

    lookahead = 0

    def anticipate(self, situation: Any) -> list[Any]:
        return []


class LooksAheadWithoutAnticipating(SingleStrategy):
    lookahead = 5


class LooksAheadAndActs(SingleStrategy):
    """Between windows, moves off the model in service whenever the inputs are high."""

    lookahead = 5

    def anticipate(self, situation: Any) -> list[Any]:
        from harmonia.core.actions import ActionKind
        from harmonia.core.strategies.base import Trigger, planned

        if situation.summary.drift_values.mean() < 150:
            return []
        other = next(m for m in situation.policy.models if m != situation.active_model)
        return [planned(ActionKind.SWITCH_MODEL, "high", Trigger("ahead", {}), model=other)]


@pytest.mark.parametrize(
    ("strategy", "message"),
    [
        (LooksAheadBadly, "lookahead 0 is not a positive number of samples"),
        (LooksAheadWithoutAnticipating, "a lookahead without anticipate"),
    ],
)
def test_a_malformed_look_ahead_fails_its_check(strategy: Any, message: str) -> None:
    checks = {c.name: c for c in strategy_checks(strategy)}
    with pytest.raises(AssertionError, match=message):
        checks["looks_ahead_as_declared"]()


def test_a_look_ahead_that_acts_passes_and_is_driven_between_windows() -> None:
    from harmonia.testing._strategies import _run

    checks = {c.name: c for c in strategy_checks(LooksAheadAndActs)}
    checks["looks_ahead_as_declared"]()
    decided = _run(LooksAheadAndActs, "single", strategy=LooksAheadAndActs())
    assert any(action.trigger == "ahead" for *_, action in decided)
