"""ADWIN and Page-Hinkley: detect an abrupt change in a stream, one value or a window at a time."""

from __future__ import annotations

import numpy as np
import pytest

from harmonia.drift import ADWINDetector, PageHinkleyDetector
from harmonia.drift.streaming import Mode

DETECTORS = [ADWINDetector, PageHinkleyDetector]
CHANGE = 300


# Page-Hinkley's threshold (lambda, 50 by default) is in the units of the values: with
# unit-variance noise it raises false alarms over long streams, so these streams are quieter.
NOISE = 0.5


def warm_up() -> np.ndarray:
    return np.random.default_rng(0).normal(0.0, NOISE, 1000)


def stream_with_change() -> np.ndarray:
    """300 values like the warm-up, then the mean jumps by 3."""
    rng = np.random.default_rng(1)
    return np.concatenate([rng.normal(0.0, NOISE, CHANGE), rng.normal(3.0, NOISE, 300)])


@pytest.mark.parametrize("cls", DETECTORS)
def test_abrupt_change_is_flagged_after_the_change_point(cls: type[ADWINDetector]) -> None:
    result = cls().fit(warm_up()).score(stream_with_change())
    indices = result.detail["indices"]
    assert result.drifted
    assert result.statistic == float(len(indices)) >= 1.0
    assert CHANGE <= indices[0] < CHANGE + 100
    assert result.detail["n_seen"] == 2 * CHANGE


@pytest.mark.parametrize("cls", DETECTORS)
def test_update_single_items(cls: type[ADWINDetector]) -> None:
    detector = cls().fit(warm_up())
    flags = [detector.update(float(x)) for x in stream_with_change()]
    assert all(isinstance(flag, bool) for flag in flags)
    first = flags.index(True)
    assert CHANGE <= first < CHANGE + 100
    # The window API reports the same positions as item-by-item updates.
    windowed = cls().fit(warm_up()).score(stream_with_change())
    assert windowed.detail["indices"] == [i for i, flag in enumerate(flags) if flag]


@pytest.mark.parametrize("cls", DETECTORS)
def test_update_checks_state_and_input(cls: type[ADWINDetector]) -> None:
    with pytest.raises(RuntimeError, match=r"fit\(\)"):
        cls().update(0.0)
    with pytest.raises(ValueError):
        cls().fit(warm_up()).update(float("nan"))


@pytest.mark.parametrize("cls", DETECTORS)
def test_state_carries_across_windows(cls: type[ADWINDetector]) -> None:
    stream = stream_with_change()
    whole = cls().fit(warm_up()).score(stream)
    split = cls().fit(warm_up())
    first, second = split.score(stream[:CHANGE]), split.score(stream[CHANGE:])
    assert not first.drifted
    assert [CHANGE + i for i in second.detail["indices"]] == whole.detail["indices"]


@pytest.mark.parametrize("cls", DETECTORS)
def test_refit_resets_state(cls: type[ADWINDetector]) -> None:
    shifted = np.random.default_rng(2).normal(3.0, NOISE, 500)
    detector = cls().fit(warm_up())
    assert detector.score(shifted).drifted
    old = detector.detector_
    # Fitted on the shifted regime, the same kind of data is no longer a change.
    detector.fit(np.random.default_rng(3).normal(3.0, NOISE, 1000))
    assert detector.detector_ is not old
    assert detector.reference_detections_ == 0
    assert not detector.score(shifted).drifted
    # And refitting on the original reference gives what a fresh detector gives.
    detector.fit(warm_up())
    assert detector.score(shifted) == cls().fit(warm_up()).score(shifted)


def test_adwin_threshold_counts_detections() -> None:
    detector = ADWINDetector()
    assert detector.threshold == 0.0
    detector.fit(warm_up())
    detector.threshold = 1000.0
    result = detector.score(stream_with_change())
    assert result.statistic >= 1.0 and not result.drifted


@pytest.mark.parametrize("mode", ["up", "down", "both"])
def test_page_hinkley_mode(mode: Mode) -> None:
    drop = np.random.default_rng(4).normal(-3.0, NOISE, 300)
    rise = np.random.default_rng(5).normal(3.0, NOISE, 300)
    sees_drop = PageHinkleyDetector(mode=mode).fit(warm_up()).score(drop).drifted
    sees_rise = PageHinkleyDetector(mode=mode).fit(warm_up()).score(rise).drifted
    assert sees_drop == (mode in ("down", "both"))
    assert sees_rise == (mode in ("up", "both"))


def test_page_hinkley_rejects_bad_mode() -> None:
    with pytest.raises(ValueError, match="mode"):
        PageHinkleyDetector(mode="sideways")  # type: ignore[arg-type]
