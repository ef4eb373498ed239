"""Image drift from sharpness: has the camera gone soft (blur) or grainy (noise)?

The luminance detector sees light and contrast; it is blind to a lens out of focus or a
sensor gone noisy, which keep the brightness of a scene. Sharpness sees those: per image,
the mean absolute Laplacian (how much each pixel differs from its neighbours) divided by
the image's contrast (standard deviation of luminance). The ratio does not move when an
image is darkened or fogged (both scale the Laplacian and the contrast alike), rises with
noise and falls with blur, so together the two detectors tell the four conditions apart.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray

from harmonia.drift._checks import check_fitted, check_real
from harmonia.drift._protocol import DriftScore
from harmonia.drift.luminance import luminance

_EPSILON = 1e-6


def sharpness(images: ArrayLike, what: str = "images") -> NDArray[np.float64]:
    """Per image: mean absolute 4-neighbour Laplacian over the standard deviation.

    Accepts the shapes and value ranges of `harmonia.drift.luminance.luminance`. A flat image
    (no contrast) has sharpness 0.

    >>> flat = np.zeros((1, 4, 4))
    >>> sharpness(flat).tolist()
    [0.0]
    """
    gray = luminance(images, what)
    laplacian = (
        4 * gray[:, 1:-1, 1:-1]
        - gray[:, :-2, 1:-1]
        - gray[:, 2:, 1:-1]
        - gray[:, 1:-1, :-2]
        - gray[:, 1:-1, 2:]
    )
    energy = np.abs(laplacian).reshape(len(gray), -1).mean(axis=1)
    contrast = gray.reshape(len(gray), -1).std(axis=1)
    result: NDArray[np.float64] = np.where(
        contrast > _EPSILON, energy / np.maximum(contrast, _EPSILON), 0.0
    )
    return result


class SharpnessDetector:
    """Relative change of the mean sharpness (see `sharpness`), and whether it is noise or blur.

    ``fit`` learns the mean sharpness of reference images; ``score`` computes the window's.
    The statistic is ``|log(window / reference)|`` (0 when unchanged, symmetric in sharper
    and softer); the window is drifted above ``threshold``. ``detail["condition"]`` is
    ``"noise"`` when the window is sharper, ``"blur"`` when it is softer, ``"none"`` when it
    is not drifted; ``detail`` also has ``sharpness`` and ``reference_sharpness``.

    Parameters
    ----------
    threshold
        Log-ratio above which the window is drifted (0.2: about 20 % sharper or softer).

    Examples
    --------
    >>> from scipy.ndimage import gaussian_filter
    >>> rng = np.random.default_rng(0)
    >>> images = gaussian_filter(rng.random((8, 24, 24)), (0, 1, 1))
    >>> detector = SharpnessDetector().fit(images)
    >>> detector.score(images * 0.3).detail["condition"]  # darker, but as sharp
    'none'
    >>> detector.score(gaussian_filter(images, (0, 1.5, 1.5))).detail["condition"]
    'blur'
    """

    name: ClassVar[str] = "sharpness"
    reference_sharpness_: float

    def __init__(self, threshold: float = 0.2) -> None:
        check_real(threshold, "threshold", low=0.0, high=10.0, low_open=True)
        self.threshold = threshold

    def fit(self, reference: ArrayLike) -> Self:
        """Learn the reference images' mean sharpness."""
        self.reference_sharpness_ = float(sharpness(reference, "reference").mean())
        return self

    def score(self, window: ArrayLike) -> DriftScore:
        """Log-ratio of the window's mean sharpness to the reference's; names the condition."""
        check_fitted(self, "reference_sharpness_")
        value = float(sharpness(window, "window").mean())
        statistic = abs(math.log(max(value, _EPSILON) / max(self.reference_sharpness_, _EPSILON)))
        drifted = statistic > self.threshold
        condition = "none"
        if drifted:
            condition = "noise" if value > self.reference_sharpness_ else "blur"
        detail: dict[str, Any] = {
            "condition": condition,
            "sharpness": value,
            "reference_sharpness": self.reference_sharpness_,
        }
        return DriftScore(statistic=statistic, drifted=drifted, detail=detail)
