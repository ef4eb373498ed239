"""Histogram detectors: KL divergence, population stability index, Jensen–Shannon distance.

All three compare two *probability histograms built on the same bin edges*. HarmonE called
``np.histogram(reference, bins=50, density=True)`` and ``np.histogram(current, bins=50,
density=True)`` separately, so each histogram had its own edges: bin ``i`` of one covered other
values than bin ``i`` of the other, and the KL divergence between them only compared the two
*shapes*. A window that moved far away but kept its shape scored close to zero. Here both
histograms always share their edges, so a move of location is seen.

Two ways of choosing the shared edges are used:

* ``"range"`` (KL, Jensen–Shannon): equal-width bins spanning the union of both samples'
  ranges. Every value of either sample lands in a bin of its own, so the window's histogram
  keeps its shape even where it lies wholly outside the reference range, and the comparison
  is symmetric in the two samples (Jensen–Shannon is). The price: the edges depend on the
  window, and an extreme outlier stretches the range and coarsens the bins.
* ``"quantile"`` (PSI): interior edges at the reference's quantiles (deciles by default), the
  industry convention for the population stability index; each reference bin then holds
  the same share of the reference, the edges are fixed at ``fit`` and robust to outliers.
  The outer bins are open-ended: values outside the reference range fall in the edge bins.

Each probability histogram is smoothed by adding ``epsilon`` to every bin and renormalising,
so that no bin is zero and the logarithms in KL and PSI stay finite.
"""

from __future__ import annotations

from typing import ClassVar, Literal, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.spatial.distance import jensenshannon
from scipy.stats import entropy

from harmonia.drift._checks import check_fitted, check_int, check_real
from harmonia.drift._protocol import DriftScore, as_1d

Binning = Literal["range", "quantile"]

DEFAULT_EPSILON = 1e-6
"""Probability added to every bin before renormalising (PSI's smoothing; KL's default)."""


def _range_inner_edges(
    reference: NDArray[np.float64], current: NDArray[np.float64], bins: int
) -> NDArray[np.float64]:
    low = min(float(reference.min()), float(current.min()))
    high = max(float(reference.max()), float(current.max()))
    return np.linspace(low, high, bins + 1)[1:-1]


def _quantile_inner_edges(reference: NDArray[np.float64], bins: int) -> NDArray[np.float64]:
    # Ties in the reference (discrete data) give repeated quantiles; a repeated edge would
    # only make an empty bin in both histograms, so it is dropped.
    quantiles = np.quantile(reference, np.linspace(0.0, 1.0, bins + 1)[1:-1])
    return np.unique(quantiles)


def _probabilities(
    values: NDArray[np.float64], inner_edges: NDArray[np.float64], epsilon: float
) -> NDArray[np.float64]:
    # Bin ``k`` holds ``inner_edges[k-1] <= x < inner_edges[k]``; the first and last bins are
    # open-ended, so a value outside every edge still lands in an edge bin.
    index = np.searchsorted(inner_edges, values, side="right")
    counts = np.bincount(index, minlength=inner_edges.size + 1).astype(float)
    smoothed = counts / counts.sum() + epsilon
    probabilities: NDArray[np.float64] = smoothed / smoothed.sum()
    return probabilities


def shared_histograms(
    reference: ArrayLike,
    current: ArrayLike,
    bins: int = 50,
    *,
    binning: Binning = "range",
    epsilon: float = DEFAULT_EPSILON,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Probability histograms of ``reference`` and ``current`` on the same bin edges.

    ``binning="range"`` uses ``bins`` equal-width bins over the union of both ranges;
    ``binning="quantile"`` puts the interior edges at the reference's quantiles (repeated
    quantiles merge, so fewer bins may come back). ``epsilon`` is added to every bin before
    renormalising; ``epsilon=0`` leaves empty bins at zero.

    >>> ref, cur = shared_histograms([0.0, 1.0, 2.0, 3.0], [2.5, 3.0], bins=3, epsilon=0.0)
    >>> ref.tolist(), cur.tolist()
    ([0.25, 0.25, 0.5], [0.0, 0.0, 1.0])
    """
    check_int(bins, "bins", minimum=1)
    check_real(epsilon, "epsilon", low=0.0)
    ref = as_1d(reference, "reference")
    cur = as_1d(current, "current window")
    if binning == "range":
        inner = _range_inner_edges(ref, cur, bins)
    elif binning == "quantile":
        inner = _quantile_inner_edges(ref, bins)
    else:
        raise ValueError(f"binning must be 'range' or 'quantile', got {binning!r}")
    return _probabilities(ref, inner, epsilon), _probabilities(cur, inner, epsilon)


def js_distance(p: ArrayLike, q: ArrayLike) -> float:
    """Jensen–Shannon distance, base 2, of two histograms: in [0, 1], 0 for equal ones.

    ``scipy.spatial.distance.jensenshannon``, guarded against the NaN that its square root
    gives when rounding makes a near-zero divergence slightly negative.

    >>> js_distance([1.0, 0.0], [0.0, 1.0])
    1.0
    """
    distance = float(jensenshannon(p, q, base=2.0))
    return 0.0 if np.isnan(distance) else min(distance, 1.0)


def _kl(p: NDArray[np.float64], q: NDArray[np.float64]) -> float:
    """KL(p || q) in nats; both are smoothed, so no term is infinite."""
    return float(np.sum(p * np.log(p / q)))


def kl_divergence(
    reference: ArrayLike, current: ArrayLike, bins: int = 50, *, epsilon: float = DEFAULT_EPSILON
) -> float:
    """KL(current || reference) in nats, on shared equal-width bins over both ranges.

    The direction is HarmonE's ``scipy.stats.entropy(current_hist, reference_hist)``: how
    surprising the current window is to a model of the reference. Mass the window puts where
    the reference has none costs a lot; reference mass the window lacks costs little.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> reference = rng.normal(0.0, 1.0, 2000)
    >>> kl_divergence(reference, reference)
    0.0
    >>> kl_divergence(reference, rng.normal(3.0, 1.0, 500)) > 0.75
    True
    """
    check_real(epsilon, "epsilon", low=0.0, low_open=True)
    ref, cur = shared_histograms(reference, current, bins, binning="range", epsilon=epsilon)
    return _kl(cur, ref)


def separate_edges_kl(reference: ArrayLike, current: ArrayLike, bins: int = 50) -> float:
    """HarmonE's published KL: each histogram on its own edges, 1e-10 smoothing.

    Kept only to reproduce the published behaviour (``shared_edges=False``); it compares
    shapes, not locations, so a window that moved away with the same shape scores about 0.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> separate_edges_kl(rng.normal(0, 1, 2000), rng.normal(10, 1, 2000)) < 0.75  # missed
    True
    """
    ref = as_1d(reference, "reference")
    cur = as_1d(current, "current window")
    ref_hist = np.histogram(ref, bins=bins, density=True)[0] + 1e-10
    cur_hist = np.histogram(cur, bins=bins, density=True)[0] + 1e-10
    return float(entropy(cur_hist, ref_hist))


class KLDivergenceDetector:
    """Kullback–Leibler divergence KL(current || reference), in nats, on shared bins.

    The statistic grows with drift; the window is drifted when it exceeds ``threshold``
    (HarmonE's 0.75). Bins are ``bins`` equal-width bins over the union of the reference's
    and the window's ranges, smoothed with ``epsilon`` (see the module docstring for why).

    Parameters
    ----------
    bins
        Number of equal-width bins (HarmonE used 50).
    threshold
        KL divergence, in nats, above which the window is drifted.
    epsilon
        Probability added to every bin so that no bin is zero; it caps what one empty
        reference bin can cost at about ``log(1 / epsilon)``.
    shared_edges
        ``False`` reproduces HarmonE's defect (`separate_edges_kl`), for faithful replays.

    Examples
    --------
    >>> import numpy as np
    >>> from harmonia.drift import KLDivergenceDetector
    >>> rng = np.random.default_rng(42)
    >>> detector = KLDivergenceDetector().fit(rng.normal(0.0, 1.0, 2000))
    >>> detector.score(rng.normal(0.0, 1.0, 500)).drifted
    False
    >>> detector.score(rng.normal(3.0, 1.0, 500)).drifted
    True
    """

    name: ClassVar[str] = "kl"
    reference_: NDArray[np.float64]

    def __init__(
        self,
        bins: int = 50,
        threshold: float = 0.75,
        epsilon: float = DEFAULT_EPSILON,
        shared_edges: bool = True,
    ):
        check_int(bins, "bins", minimum=2)
        check_real(threshold, "threshold", low=0.0)
        check_real(epsilon, "epsilon", low=0.0, low_open=True)
        self.bins = bins
        self.threshold = threshold
        self.epsilon = epsilon
        self.shared_edges = shared_edges

    def fit(self, reference: ArrayLike) -> Self:
        """Keep the reference sample: the shared edges depend on each window's range too."""
        self.reference_ = as_1d(reference, "reference").copy()
        return self

    def score(self, window: ArrayLike) -> DriftScore:
        """KL(window || reference); ``detail`` has the number of bins and the direction."""
        check_fitted(self, "reference_")
        if self.shared_edges:
            statistic = kl_divergence(self.reference_, window, self.bins, epsilon=self.epsilon)
        else:
            statistic = separate_edges_kl(self.reference_, window, self.bins)
        return DriftScore(
            statistic=statistic,
            drifted=statistic > self.threshold,
            detail={
                "bins": self.bins,
                "direction": "KL(current || reference)",
                "shared_edges": self.shared_edges,
            },
        )


class PSIDetector:
    """Population stability index on reference-quantile bins.

    ``PSI = sum_i (c_i - r_i) * ln(c_i / r_i)`` over bins whose interior edges are the
    reference's quantiles (deciles for ``bins=10``), ``r_i`` and ``c_i`` being the reference's
    and the window's shares of bin ``i``. It is the symmetrised KL divergence
    KL(c || r) + KL(r || c), grows with drift, and the usual reading is: below 0.1 no
    significant change, 0.1 to 0.2 a small change, above 0.2 a significant one, hence the
    default ``threshold``. The edges are fixed at ``fit``; values outside the reference range
    fall in the two open-ended edge bins. Shares are smoothed with a ``1e-6`` floor.

    Parameters
    ----------
    bins
        Number of reference-quantile bins (repeated quantiles of discrete data merge).
    threshold
        PSI above which the window is drifted.

    Examples
    --------
    >>> import numpy as np
    >>> from harmonia.drift import PSIDetector
    >>> rng = np.random.default_rng(42)
    >>> detector = PSIDetector().fit(rng.normal(0.0, 1.0, 2000))
    >>> detector.score(rng.normal(0.0, 1.0, 500)).drifted
    False
    >>> detector.score(rng.normal(3.0, 1.0, 500)).drifted
    True
    """

    name: ClassVar[str] = "psi"
    inner_edges_: NDArray[np.float64]
    reference_probabilities_: NDArray[np.float64]

    def __init__(self, bins: int = 10, threshold: float = 0.2):
        check_int(bins, "bins", minimum=2)
        check_real(threshold, "threshold", low=0.0)
        self.bins = bins
        self.threshold = threshold

    def fit(self, reference: ArrayLike) -> Self:
        """Learn the quantile edges and the reference's share of each bin."""
        ref = as_1d(reference, "reference")
        self.inner_edges_ = _quantile_inner_edges(ref, self.bins)
        self.reference_probabilities_ = _probabilities(ref, self.inner_edges_, DEFAULT_EPSILON)
        return self

    def score(self, window: ArrayLike) -> DriftScore:
        """PSI of ``window`` against the reference; ``detail`` has the number of bins used."""
        check_fitted(self, "reference_probabilities_")
        current = _probabilities(as_1d(window, "window"), self.inner_edges_, DEFAULT_EPSILON)
        reference = self.reference_probabilities_
        statistic = float(np.sum((current - reference) * np.log(current / reference)))
        return DriftScore(
            statistic=statistic,
            drifted=statistic > self.threshold,
            detail={"bins": int(reference.size)},
        )


class JensenShannonDetector:
    """Jensen–Shannon distance (base 2) between the reference and the window, on shared bins.

    The statistic is ``scipy.spatial.distance.jensenshannon`` with ``base=2``: the square
    root of the Jensen–Shannon divergence. It is symmetric, lies in [0, 1] (1 for histograms
    with no bin in common) and grows with drift. Bins are equal-width over the union of both
    ranges; no smoothing is needed because the divergence is finite with empty bins.

    The default ``threshold`` is 0.2, not the 0.1 often quoted for this distance: that figure
    goes with coarse (Sturges, about a dozen) bins. With 50 bins the sampling noise alone of
    a 500-value window drawn from the reference distribution gives distances of about 0.11
    to 0.18 (and about 0.3 for a 100-value window), while a shift of half a standard
    deviation gives about 0.25. Lower ``bins`` or raise ``threshold`` for short windows.

    Parameters
    ----------
    bins
        Number of equal-width bins.
    threshold
        Distance above which the window is drifted.

    Examples
    --------
    >>> import numpy as np
    >>> from harmonia.drift import JensenShannonDetector
    >>> rng = np.random.default_rng(42)
    >>> detector = JensenShannonDetector().fit(rng.normal(0.0, 1.0, 2000))
    >>> detector.score(rng.normal(0.0, 1.0, 500)).drifted
    False
    >>> detector.score(rng.normal(3.0, 1.0, 500)).drifted
    True
    >>> round(detector.score(rng.normal(100.0, 1.0, 500)).statistic, 6)
    1.0
    """

    name: ClassVar[str] = "js"
    reference_: NDArray[np.float64]

    def __init__(self, bins: int = 50, threshold: float = 0.2):
        check_int(bins, "bins", minimum=2)
        check_real(threshold, "threshold", low=0.0, high=1.0)
        self.bins = bins
        self.threshold = threshold

    def fit(self, reference: ArrayLike) -> Self:
        """Keep the reference sample: the shared edges depend on each window's range too."""
        self.reference_ = as_1d(reference, "reference").copy()
        return self

    def score(self, window: ArrayLike) -> DriftScore:
        """Jensen–Shannon distance (base 2) between the window and the reference."""
        check_fitted(self, "reference_")
        reference, current = shared_histograms(
            self.reference_, window, self.bins, binning="range", epsilon=0.0
        )
        statistic = js_distance(reference, current)
        return DriftScore(
            statistic=statistic,
            drifted=statistic > self.threshold,
            detail={"bins": self.bins, "base": 2},
        )
