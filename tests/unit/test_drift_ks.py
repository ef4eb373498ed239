"""KS detector: the p-value decides, at ``alpha``."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import ks_2samp

from harmonia.drift import KSDetector


def test_p_value_in_detail_matches_scipy() -> None:
    reference = np.random.default_rng(0).normal(0.0, 1.0, 1000)
    window = np.random.default_rng(1).normal(0.2, 1.0, 300)
    result = KSDetector().fit(reference).score(window)
    expected = ks_2samp(reference, window)
    assert result.statistic == pytest.approx(float(expected.statistic))
    assert result.detail["p_value"] == pytest.approx(float(expected.pvalue))
    assert 0.0 <= result.detail["p_value"] <= 1.0


def test_alpha_decides() -> None:
    reference = np.random.default_rng(0).normal(0.0, 1.0, 1000)
    window = np.random.default_rng(1).normal(0.15, 1.0, 300)
    p_value = KSDetector().fit(reference).score(window).detail["p_value"]
    assert 1e-4 < p_value < 0.5, "the window must give a p-value between the alphas below"
    below = KSDetector(alpha=p_value / 2).fit(reference).score(window)
    above = KSDetector(alpha=min(0.99, p_value * 2)).fit(reference).score(window)
    assert below.statistic == above.statistic
    assert not below.drifted
    assert above.drifted


def test_threshold_is_alpha() -> None:
    detector = KSDetector(alpha=0.01)
    assert detector.threshold == 0.01
    detector.threshold = 0.1
    assert detector.alpha == 0.1
    with pytest.raises(ValueError):
        detector.threshold = 0.0


@pytest.mark.parametrize("alpha", [0.0, 1.0, -0.1, float("nan"), True])
def test_invalid_alpha(alpha: float) -> None:
    with pytest.raises(ValueError):
        KSDetector(alpha=alpha)
