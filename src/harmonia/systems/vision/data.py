"""Images for the vision system: scikit-learn's bundled digits, upscaled, with camera drift.

The digits (1,797 grey 8×8 images, ten classes) install with scikit-learn, so the system
needs no download. Each is upscaled to ``SIZE``×``SIZE`` (bilinear) and scaled to [0, 1].
A stratified split keeps ``TRAIN_SHARE`` for training (its last ``VALIDATION_SHARE`` scores
each model's expected quality); the rest is held out, and the stream is drawn from it: a
few thousand images, each shifted by up to a pixel so that repeats are not identical, with
the drift a scenario file places on stretches of it (see `harmonia.systems.vision.scenario`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from numpy.typing import NDArray

from harmonia.drift.sharpness import sharpness

#: side of the square images the models see
SIZE = 24
TRAIN_SHARE = 0.6
VALIDATION_SHARE = 0.2
CLASSES = 10

Images = NDArray[np.float32]
Labels = NDArray[np.int64]


@dataclass(frozen=True)
class Split:
    """The training images and labels, and the held-out ones the stream is drawn from."""

    train_images: Images
    train_labels: Labels
    held_out_images: Images
    held_out_labels: Labels


def upscale(images: NDArray[np.floating], size: int = SIZE) -> Images:
    """Bilinear upscaling of a batch ``(n, h, w)`` to ``(n, size, size)``.

    >>> upscale(np.ones((2, 8, 8)), 16).shape
    (2, 16, 16)
    """
    from scipy.ndimage import zoom

    _, h, w = images.shape
    zoomed = zoom(np.asarray(images, dtype=np.float64), (1, size / h, size / w), order=1)
    result: Images = np.clip(zoomed, 0.0, 1.0).astype(np.float32)
    return result


@cache
def load_split(seed: int = 0) -> Split:
    """The digits, upscaled and split (stratified, seeded); cached per process."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = upscale(digits.images / 16.0)
    labels = digits.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    train: list[int] = []
    held: list[int] = []
    for label in range(CLASSES):
        members = rng.permutation(np.flatnonzero(labels == label))
        cut = round(len(members) * TRAIN_SHARE)
        train.extend(members[:cut].tolist())
        held.extend(members[cut:].tolist())
    train_index = rng.permutation(np.asarray(train))
    held_index = rng.permutation(np.asarray(held))
    return Split(images[train_index], labels[train_index], images[held_index], labels[held_index])


def training_and_validation() -> tuple[Images, Labels, Images, Labels]:
    """The training images and labels a model learns from (the first 80 % of the split's
    training part) and those its expected quality is measured on (the last 20 %)."""
    split = load_split()
    cut = int(len(split.train_images) * (1 - VALIDATION_SHARE))
    images, labels = split.train_images, split.train_labels
    return images[:cut], labels[:cut], images[cut:], labels[cut:]


def shift(images: Images, dx: NDArray[np.int64], dy: NDArray[np.int64]) -> Images:
    """Each image translated by its own (dx, dy) pixels, filling with black.

    >>> shift(np.eye(3, dtype=np.float32)[None], np.array([1]), np.array([0]))[0].tolist()
    [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]]
    """
    out = np.zeros_like(images)
    _, h, w = images.shape
    for i, (x, y) in enumerate(zip(dx.tolist(), dy.tolist(), strict=True)):
        src = images[i, max(0, -y) : h - max(0, y), max(0, -x) : w - max(0, x)]
        out[i, max(0, y) : max(0, y) + src.shape[0], max(0, x) : max(0, x) + src.shape[1]] = src
    return out


def jitter(images: Images, rng: np.random.Generator) -> Images:
    """Each image shifted by up to one pixel either way, as the camera's framing wobbles."""
    n = len(images)
    return shift(images, rng.integers(-1, 2, n), rng.integers(-1, 2, n))


def clean_stream(samples: int, seed: int = 0) -> tuple[Images, Labels]:
    """``samples`` held-out images in a seeded order, each jittered by up to one pixel."""
    split = load_split()
    rng = np.random.default_rng(seed + 1)
    index = rng.integers(0, len(split.held_out_images), samples)
    return jitter(split.held_out_images[index], rng), split.held_out_labels[index]


def reference_images(seed: int = 0) -> Images:
    """The training images as the camera shows them (jittered like the stream): what drift
    detectors compare a window of the stream with."""
    return jitter(load_split().train_images, np.random.default_rng(seed + 3))


def input_features(images: Images) -> dict[str, NDArray[np.float64]]:
    """Per image, what each sample reports besides its drift value (the policy's
    ``drift.features``): ``sharpness``, which sensor noise raises and blur lowers while the
    luminance barely moves (`harmonia.drift.sharpness.sharpness`)."""
    return {"sharpness": sharpness(images)}


def mean_luminance(images: Images) -> NDArray[np.float64]:
    """Each image's mean luminance: what the vision system reports for drift detection."""
    flat = np.asarray(images, dtype=np.float64).reshape(len(images), -1)
    means: NDArray[np.float64] = flat.mean(axis=1)
    return means
