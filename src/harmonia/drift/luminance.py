"""Image drift from luminance: has the scene become darker, foggier, or otherwise different?

HarmonE's vision use case watches a camera whose input degrades with the weather and the time
of day. Luminance is a cheap signal of both: night lowers the mean luminance, fog flattens the
image (lower contrast, and usually brighter). This detector compares luminance histograms and
names the condition it recognises, so that a strategy can pick a model trained for it.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray

from harmonia.drift._checks import check_fitted, check_int, check_real
from harmonia.drift._protocol import DriftScore
from harmonia.drift.histogram import js_distance

_BT601 = np.array([0.299, 0.587, 0.114])
"""ITU-R BT.601 luma weights of R, G and B."""


def luminance(images: ArrayLike, what: str = "images") -> NDArray[np.float64]:
    """Luminance in [0, 1] of a batch of images, as an array shaped (n, h, w).

    Accepted shapes:

    * ``(n, h, w, 3)``: a batch of RGB images; ``(n, h, w, 1)``: a batch of grayscale ones.
    * ``(h, w, 3)``: *one* RGB image. This shape is ambiguous (it could be ``h`` grayscale
      images ``w`` pixels by 3); a single colour image is by far the likelier meaning, so a
      batch of 3-pixel-wide grayscale images must be passed as ``(n, h, w, 1)``.
    * ``(n, h, w)`` with ``w != 3``: a batch of grayscale images.
    * ``(h, w)``: one grayscale image.

    RGB is reduced to luma with the BT.601 weights ``0.299 R + 0.587 G + 0.114 B``. Values
    are read as 0..255 when the array has an integer dtype or any value above 1, and as 0..1
    otherwise (so a float batch in 0..255 that happens to be all at most 1, i.e. nearly
    black, would be misread: pass such data as integers).

    >>> luminance([[0, 255]]).tolist()
    [[[0.0, 1.0]]]
    >>> luminance([[[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]]]).round(3).tolist()
    [[[1.0, 0.299]]]
    """
    array = np.asarray(images)
    integer = np.issubdtype(array.dtype, np.integer)
    if not (integer or np.issubdtype(array.dtype, np.floating) or array.dtype == np.bool_):
        raise ValueError(f"{what} must hold numbers, got dtype {array.dtype}")
    values = array.astype(float)
    if values.ndim == 4 and values.shape[-1] == 3:
        gray = values @ _BT601
    elif values.ndim == 4 and values.shape[-1] == 1:
        gray = values[..., 0]
    elif values.ndim == 3 and values.shape[-1] == 3:
        gray = (values @ _BT601)[np.newaxis]
    elif values.ndim == 3:
        gray = values
    elif values.ndim == 2:
        gray = values[np.newaxis]
    else:
        raise ValueError(
            f"{what} must be shaped (n, h, w), (n, h, w, 3), (n, h, w, 1), (h, w) or (h, w, 3);"
            f" got {array.shape}"
        )
    if gray.size == 0:
        raise ValueError(f"{what} is empty")
    if not np.all(np.isfinite(gray)):
        raise ValueError(f"{what} contains NaN or infinite values")
    low, high = float(gray.min()), float(gray.max())
    if low < 0.0 or high > 255.0:
        raise ValueError(f"{what} must lie in [0, 1] or [0, 255], got values in [{low}, {high}]")
    if integer or high > 1.0:
        gray = gray / 255.0
    clipped: NDArray[np.float64] = np.clip(gray, 0.0, 1.0)
    return clipped


class LuminanceDetector:
    """Jensen–Shannon distance between luminance histograms, plus the condition behind it.

    ``fit`` learns, from a batch of reference images, the histogram of pixel luminance on
    ``bins`` fixed bins over [0, 1], the mean luminance and the contrast (the standard
    deviation of luminance within an image, averaged over the images). ``score`` computes
    the same for a window of images; the statistic is the Jensen–Shannon distance (base 2,
    in [0, 1], growing with drift) between the two histograms, and the window is drifted
    when it exceeds ``threshold``. Fixed edges over [0, 1] are possible because luminance
    has known bounds, and make every window comparable with every other.

    A drifted window is also named, as HarmonE tells night from fog, in
    ``detail["condition"]``:

    * ``"dark"``: the mean luminance fell by more than ``dark_drop`` (night, dusk);
    * ``"fog"``: otherwise, the contrast fell below ``fog_contrast_ratio`` times the
      reference contrast (fog flattens the image and tends to brighten it, so its mean
      does not drop);
    * ``"shifted"``: any other drift;
    * ``"none"`` when the window is not drifted.

    ``detail`` also has ``mean_luminance``, ``reference_mean_luminance``, ``contrast`` and
    ``reference_contrast``. See `luminance` for the accepted image shapes and value ranges.

    Parameters
    ----------
    bins
        Number of equal-width luminance bins over [0, 1].
    threshold
        Jensen–Shannon distance above which the window is drifted.
    dark_drop
        Drop of the mean luminance (in [0, 1] units) beyond which a drift is "dark".
    fog_contrast_ratio
        Share of the reference contrast below which a drift is "fog".

    Examples
    --------
    >>> import numpy as np
    >>> from harmonia.drift import LuminanceDetector
    >>> rng = np.random.default_rng(0)
    >>> images = np.clip(rng.normal(0.5, 0.15, (8, 16, 16)), 0.0, 1.0)
    >>> detector = LuminanceDetector().fit(images)
    >>> detector.score(images).detail["condition"]
    'none'
    >>> detector.score(images * 0.3).detail["condition"]
    'dark'
    >>> detector.score(images * 0.3 + 0.6).detail["condition"]
    'fog'
    """

    name: ClassVar[str] = "luminance"
    reference_histogram_: NDArray[np.float64]
    reference_mean_luminance_: float
    reference_contrast_: float

    def __init__(
        self,
        bins: int = 32,
        threshold: float = 0.1,
        dark_drop: float = 0.15,
        fog_contrast_ratio: float = 0.6,
    ):
        check_int(bins, "bins", minimum=2)
        check_real(threshold, "threshold", low=0.0, high=1.0)
        check_real(dark_drop, "dark_drop", low=0.0, high=1.0)
        check_real(fog_contrast_ratio, "fog_contrast_ratio", low=0.0, high=1.0, low_open=True)
        self.bins = bins
        self.threshold = threshold
        self.dark_drop = dark_drop
        self.fog_contrast_ratio = fog_contrast_ratio

    def _summary(self, images: ArrayLike, what: str) -> tuple[NDArray[np.float64], float, float]:
        gray = luminance(images, what)
        counts, _ = np.histogram(gray, bins=self.bins, range=(0.0, 1.0))
        histogram = counts / counts.sum()
        contrast = float(gray.reshape(gray.shape[0], -1).std(axis=1).mean())
        return histogram, float(gray.mean()), contrast

    def fit(self, reference: ArrayLike) -> Self:
        """Learn the reference luminance histogram, mean luminance and contrast."""
        histogram, mean, contrast = self._summary(reference, "reference")
        self.reference_histogram_ = histogram
        self.reference_mean_luminance_ = mean
        self.reference_contrast_ = contrast
        return self

    def score(self, window: ArrayLike) -> DriftScore:
        """JS distance of the window's luminance histogram; ``detail`` names the condition."""
        check_fitted(self, "reference_histogram_")
        histogram, mean, contrast = self._summary(window, "window")
        statistic = js_distance(self.reference_histogram_, histogram)
        drifted = statistic > self.threshold
        detail: dict[str, Any] = {
            "condition": self._condition(drifted, mean, contrast),
            "mean_luminance": mean,
            "reference_mean_luminance": self.reference_mean_luminance_,
            "contrast": contrast,
            "reference_contrast": self.reference_contrast_,
        }
        return DriftScore(statistic=statistic, drifted=drifted, detail=detail)

    def _condition(self, drifted: bool, mean: float, contrast: float) -> str:
        if not drifted:
            return "none"
        if self.reference_mean_luminance_ - mean > self.dark_drop:
            return "dark"
        if contrast < self.fog_contrast_ratio * self.reference_contrast_:
            return "fog"
        return "shifted"
