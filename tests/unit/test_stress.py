"""Reading a version's stress test from inputs alone (`harmonia.core.strategies.stress`)."""

from __future__ import annotations

import numpy as np
import pytest

from harmonia.core.knowledge import fingerprint
from harmonia.core.strategies.stress import DRIFT, condition_of, conditions, own_inputs

OWN = fingerprint(np.random.default_rng(0).normal(100.0, 5.0, 2000))
META: dict[str, object] = {
    "accuracy": 0.95,
    "inputs.sharpness_mean": 0.2,
    "inputs.sharpness_std": 0.05,
    "context.dark.accuracy": 0.6,
    "context.dark.drift_mean": 40.0,
    "context.dark.sharpness_mean": 0.2,
    "context.noise.accuracy": 0.7,
    "context.noise.drift_mean": 104.0,
    "context.noise.sharpness_mean": 2.0,
}


def read(drift: float, sharpness: float | None = None, n: int = 5) -> dict[str, np.ndarray]:
    values = {DRIFT: np.full(n, drift)}
    if sharpness is not None:
        values["sharpness"] = np.full(n, sharpness)
    return values


def test_the_stress_test_and_the_own_data_are_read_from_the_metadata() -> None:
    assert conditions(META, "accuracy") == {"dark": 0.6, "noise": 0.7}
    own = own_inputs(META, OWN)
    assert own["sharpness"] == (0.2, 0.05)
    assert abs(own[DRIFT][0] - 100.0) < 0.5 and abs(own[DRIFT][1] - 5.0) < 0.5
    assert own_inputs({"inputs.sharpness_mean": 0.2}, []) == {}  # no spread: not usable


def test_a_condition_is_named_by_every_feature_the_window_and_the_test_share() -> None:
    # luminance alone: 104 is within chance of the own data's 100 (five values)
    assert condition_of(read(104.0), META, OWN, "accuracy") is None
    assert condition_of(read(104.0, 2.1), META, OWN, "accuracy") == ("noise", 0.7)
    assert condition_of(read(104.0, 0.21), META, OWN, "accuracy") is None
    # dark is far by drift value, whatever the sharpness says
    assert condition_of(read(40.0, 0.2), META, OWN, "accuracy") == ("dark", pytest.approx(0.6))


def test_a_feature_the_stress_test_lacks_is_left_out_and_so_is_one_without_own_data() -> None:
    no_test = {k: v for k, v in META.items() if not k.endswith("sharpness_mean")}
    assert condition_of(read(104.0, 2.1), no_test, OWN, "accuracy") is None
    no_own = {k: v for k, v in META.items() if not k.startswith("inputs.")}
    assert condition_of(read(104.0, 2.1), no_own, OWN, "accuracy") is None
    assert condition_of(read(40.0, 2.1), no_own, OWN, "accuracy") == ("dark", pytest.approx(0.6))


def test_without_own_statistics_the_nearest_condition_by_drift_value_is_taken() -> None:
    assert condition_of(read(95.0), META, [], "accuracy") == ("noise", 0.7)
    assert condition_of(read(50.0), META, [], "accuracy") == ("dark", 0.6)
    no_own = {k: v for k, v in META.items() if not k.startswith("inputs.")}
    assert condition_of({"sharpness": np.full(5, 2.0)}, no_own, [], "accuracy") is None
    # sharpness alone, with its own statistics: it names the condition
    assert condition_of({"sharpness": np.full(5, 2.0)}, META, [], "accuracy") == ("noise", 0.7)


def test_no_stress_test_or_no_finite_values_name_nothing() -> None:
    assert condition_of(read(40.0), {"accuracy": 0.9}, OWN, "accuracy") is None
    assert condition_of({DRIFT: np.array([np.nan, np.inf])}, META, OWN, "accuracy") is None
    assert condition_of(read(40.0), META, OWN, "r2") is None


def test_the_promise_is_read_at_the_windows_strength_between_the_tested_ones() -> None:
    """Fog tested mild (drift values around 150, accuracy 0.8) and strong (200, 0.4); the
    own data (100) reads at 0.95. A window at 175 lies halfway between mild and strong,
    one at 125 halfway between clean and mild; beyond the strongest, the strongest's."""
    meta = {
        "accuracy": 0.95,
        "context.fog-mild.accuracy": 0.8,
        "context.fog-mild.drift_mean": 150.0,
        "context.fog-strong.accuracy": 0.4,
        "context.fog-strong.drift_mean": 200.0,
        "context.dark-mild.accuracy": 0.1,
        "context.dark-mild.drift_mean": 50.0,
    }

    def promise(value: float) -> float:
        found = condition_of(read(value, n=50), meta, OWN, "accuracy")
        assert found is not None
        return found[1]

    assert promise(175.0) == pytest.approx(0.6, abs=0.01)
    assert promise(125.0) == pytest.approx(0.875, abs=0.01)
    assert promise(260.0) == pytest.approx(0.4)
    assert condition_of(read(170.0), meta, OWN, "accuracy")[0] == "fog-mild"  # type: ignore[index]
    # dark has one tested strength: between the own data and it
    assert promise(60.0) == pytest.approx(0.1 + 0.85 * 10 / 50, abs=0.01)
