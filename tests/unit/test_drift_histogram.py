"""Histogram detectors: KL on shared edges (the HarmonE fix), PSI by hand, JS bounds."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import entropy

from harmonia.drift import JensenShannonDetector, KLDivergenceDetector, PSIDetector, kl_divergence
from harmonia.drift.histogram import js_distance, separate_edges_kl, shared_histograms


def normal(mean: float, n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(mean, 1.0, n)


def test_kl_of_identical_data_is_zero() -> None:
    data = normal(0.0, 1000, 1)
    assert kl_divergence(data, data) == pytest.approx(0.0, abs=1e-12)
    assert KLDivergenceDetector().fit(data).score(data).statistic == pytest.approx(0.0, abs=1e-12)


def test_kl_grows_with_shift() -> None:
    reference = normal(0.0, 2000, 0)
    values = [kl_divergence(reference, normal(shift, 500, 1)) for shift in (0.0, 1.0, 2.0, 3.0)]
    assert values == sorted(values)
    assert len(set(values)) == 4
    assert values[0] < 0.75 < values[-1]


def test_shared_edges_fix_the_harmone_defect() -> None:
    reference = normal(0.0, 2000, 0)
    moved = normal(10.0, 2000, 1)  # same shape, far away
    # Separate edges (what HarmonE computed) compare shapes only: the move is invisible.
    assert separate_edges_kl(reference, moved) < 0.2
    published = KLDivergenceDetector(shared_edges=False).fit(reference)
    assert not published.score(moved).drifted
    # Shared edges see it.
    assert kl_divergence(reference, moved) > 5.0
    assert KLDivergenceDetector().fit(reference).score(moved).drifted


def test_kl_direction_is_current_given_reference() -> None:
    reference = np.random.default_rng(0).uniform(0.0, 1.0, 2000)
    narrow = np.random.default_rng(1).uniform(0.4, 0.6, 2000)
    # A narrow window inside a wide reference is unsurprising; the reverse is not.
    assert kl_divergence(reference, narrow) < kl_divergence(narrow, reference)
    p, q = shared_histograms(reference, narrow, 50)
    assert kl_divergence(reference, narrow) == pytest.approx(float(entropy(q, p)))


def test_shared_histograms_put_outside_values_in_edge_bins() -> None:
    reference, current = shared_histograms(
        [0.0, 1.0, 2.0, 3.0], [-100.0, 1.5, 100.0], bins=2, binning="quantile", epsilon=0.0
    )
    assert reference.tolist() == [0.5, 0.5]
    assert current.tolist() == pytest.approx([1 / 3, 2 / 3])


def test_shared_histograms_are_smoothed() -> None:
    reference, current = shared_histograms([0.0, 0.0, 0.0], [1.0, 1.0], bins=10)
    assert np.all(reference > 0) and np.all(current > 0)
    assert reference.sum() == pytest.approx(1.0) and current.sum() == pytest.approx(1.0)


def test_psi_by_hand() -> None:
    # Reference quantile bins with bins=2: one edge at the median, 2.5.
    # Reference shares (0.5, 0.5); window shares (0.75, 0.25).
    # PSI = (0.75 - 0.5) ln(0.75 / 0.5) + (0.25 - 0.5) ln(0.25 / 0.5) = 0.25 ln 3.
    detector = PSIDetector(bins=2).fit([1.0, 2.0, 3.0, 4.0])
    result = detector.score([1.0, 1.0, 1.0, 4.0])
    assert result.statistic == pytest.approx(0.25 * math.log(3.0), abs=1e-5)
    assert result.drifted  # 0.275 > 0.2
    assert detector.score([1.0, 2.0, 3.0, 4.0]).statistic == pytest.approx(0.0, abs=1e-12)


def test_psi_uses_reference_deciles() -> None:
    detector = PSIDetector().fit(np.arange(100.0))
    assert detector.inner_edges_.size == 9
    np.testing.assert_allclose(detector.reference_probabilities_, 0.1, atol=1e-6)


def test_psi_conventional_reading() -> None:
    reference = normal(0.0, 5000, 0)
    detector = PSIDetector().fit(reference)
    assert detector.score(normal(0.0, 5000, 1)).statistic < 0.1
    assert detector.score(normal(1.0, 5000, 2)).statistic > 0.2


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=50),
    st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=50),
)
def test_js_is_bounded_and_symmetric(a: list[float], b: list[float]) -> None:
    forward = JensenShannonDetector().fit(a).score(b).statistic
    backward = JensenShannonDetector().fit(b).score(a).statistic
    assert 0.0 <= forward <= 1.0
    assert forward == pytest.approx(backward, abs=1e-9)


def test_js_extremes() -> None:
    data = normal(0.0, 500, 0)
    assert JensenShannonDetector().fit(data).score(data).statistic == 0.0
    assert JensenShannonDetector().fit(data).score(data + 100.0).statistic == pytest.approx(1.0)
    assert js_distance([0.5, 0.5], [0.5, 0.5]) == 0.0
