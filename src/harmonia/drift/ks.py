"""Two-sample Kolmogorov–Smirnov test: no bins to choose, and a p-value to decide with."""

from __future__ import annotations

from typing import ClassVar, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.stats import ks_2samp

from harmonia.drift._checks import check_fitted, check_real
from harmonia.drift._protocol import DriftScore, as_1d


class KSDetector:
    """Two-sample Kolmogorov–Smirnov test between the reference and the window.

    The statistic is the KS ``D``: the largest gap between the two empirical distribution
    functions, in [0, 1], growing with drift; it is what a policy's ``drift.ks`` signal reads.
    The verdict, though, is the test's: the window is drifted when the p-value of "both
    samples come from one distribution" is below ``alpha``. So ``threshold`` is ``alpha``, a
    bound on the p-value and not on the statistic; unlike a fixed bound on ``D`` it accounts
    for the sample sizes. ``detail["p_value"]`` carries the p-value.

    Parameters
    ----------
    alpha
        Significance level of the test, in (0, 1).

    Examples
    --------
    >>> import numpy as np
    >>> from harmonia.drift import KSDetector
    >>> rng = np.random.default_rng(42)
    >>> detector = KSDetector(alpha=0.05).fit(rng.normal(0.0, 1.0, 2000))
    >>> detector.score(rng.normal(0.0, 1.0, 500)).drifted
    False
    >>> result = detector.score(rng.normal(3.0, 1.0, 500))
    >>> result.drifted, result.detail["p_value"] < 1e-10
    (True, True)
    """

    name: ClassVar[str] = "ks"
    reference_: NDArray[np.float64]

    def __init__(self, alpha: float = 0.05):
        check_real(alpha, "alpha", low=0.0, high=1.0, low_open=True, high_open=True)
        self.alpha = alpha

    @property
    def threshold(self) -> float:
        """The significance level ``alpha``: drifted when the p-value is below it."""
        return self.alpha

    @threshold.setter
    def threshold(self, value: float) -> None:
        check_real(value, "threshold", low=0.0, high=1.0, low_open=True, high_open=True)
        self.alpha = value

    def fit(self, reference: ArrayLike) -> Self:
        """Keep the reference sample (sorted, as the test uses it)."""
        self.reference_ = np.sort(as_1d(reference, "reference"))
        return self

    def score(self, window: ArrayLike) -> DriftScore:
        """KS ``D`` of the window against the reference; drifted when p-value < ``alpha``."""
        check_fitted(self, "reference_")
        result = ks_2samp(self.reference_, as_1d(window, "window"))
        statistic = float(result.statistic)
        p_value = float(result.pvalue)
        return DriftScore(
            statistic=statistic,
            drifted=p_value < self.alpha,
            detail={"p_value": p_value, "alpha": self.alpha},
        )
