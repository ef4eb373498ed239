"""Bring your own detector: Ultralytics YOLO models, supplied as files, behind the vision
system's interface.

HarmonE and Harmonica switch between YOLO n/s/m. A user who has such weights (``.pt``
files; nothing is downloaded) can serve them here: `YoloModel` wraps one file and predicts
``(class, confidence)`` for an image, as `VisionModel` does (for a classification model the
top class; for a detection model the most confident box's class, or class -1 with
confidence 0 when nothing is detected). `YoloSystem` serves several and switches between
them; ``reuse`` and ``retrain`` are refused with a clear error, since fine-tuning a YOLO
model needs a labelled dataset that only the user has.

``ultralytics`` is optional and not a dependency of Harmonia: install it yourself.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from harmonia.core.errors import HarmoniaError


class YoloUnavailable(HarmoniaError, RuntimeError):
    """Ultralytics is not installed, or a weights file cannot be used."""


def _ultralytics() -> Any:
    try:
        import ultralytics
    except ImportError:
        raise YoloUnavailable(
            "the YOLO adapter needs the ultralytics package: pip install ultralytics"
        ) from None
    return ultralytics


def _rgb_uint8(image: np.ndarray) -> np.ndarray:
    """An (h, w) or (h, w, 3) image in [0, 1] or [0, 255] as (h, w, 3) uint8."""
    array = np.asarray(image, dtype=np.float64)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    if array.max(initial=0.0) <= 1.0:
        array = array * 255.0
    return np.clip(array, 0, 255).astype(np.uint8)


class YoloModel:
    """One user-supplied YOLO weights file, predicting ``(class, confidence)`` per image."""

    def __init__(self, weights: str | Path, *, image_size: int = 64) -> None:
        path = Path(weights)
        if not path.is_file():
            raise YoloUnavailable(f"{path}: no such weights file (nothing is downloaded)")
        self.weights = path
        self.image_size = image_size
        self.model_ = _ultralytics().YOLO(str(path))

    def predict(self, image: np.ndarray) -> tuple[int, float]:
        """The top class of one image and its confidence."""
        result = self.model_.predict(_rgb_uint8(image), imgsz=self.image_size, verbose=False)[0]
        probs = getattr(result, "probs", None)
        if probs is not None:
            return int(probs.top1), float(probs.top1conf)
        boxes = getattr(result, "boxes", None)
        if boxes is None or len(boxes) == 0:
            return -1, 0.0
        best = int(np.argmax(boxes.conf.cpu().numpy()))
        return int(boxes.cls[best]), float(boxes.conf[best])


class YoloSystem:
    """Several YOLO models (e.g. ``{"n": ..., "s": ..., "m": ...}``), one serving at a time."""

    def __init__(self, weights: Mapping[str, str | Path], *, image_size: int = 64) -> None:
        if not weights:
            raise ValueError("give at least one model name and weights file")
        self.models = list(weights)
        self.loaded = {
            name: YoloModel(path, image_size=image_size) for name, path in weights.items()
        }
        self.active = self.models[-1]

    def predict(self, image: np.ndarray) -> tuple[int, float]:
        """The class and confidence by the model in service."""
        return self.loaded[self.active].predict(image)

    def switch(self, kind: str) -> None:
        if kind not in self.loaded:
            raise ValueError(f"unknown model {kind!r}; known: {', '.join(self.models)}")
        self.active = kind

    def reuse(self, kind: str, version: int, reason: str = "") -> None:
        raise YoloUnavailable("user-supplied YOLO models have one version each; nothing to reuse")

    def retrain(self, kind: str, recent: Any, reason: str = "") -> Any:
        raise YoloUnavailable(
            "retraining a user-supplied YOLO model needs the user's labelled dataset; "
            "fine-tune it with ultralytics and supply the new weights file"
        )
