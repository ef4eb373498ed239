"""The vision system's three classifiers, of clearly different cost and accuracy (PyTorch).

Like HarmonE's YOLO n/s/m, three sizes of one task:

* ``small``: a multilayer perceptron on the flattened image (one hidden layer of 32);
* ``medium``: a small CNN (8 and 16 channels, two poolings);
* ``large``: a wider, deeper CNN (16-16-32-32 channels, a 64-unit head).

Each is served one image at a time, as a camera service would; a prediction is the class
and its confidence (the largest softmax probability). Trained with Adam on the training
images, each shifted by up to a pixel per epoch (the stream's images are, too).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from harmonia.systems._training import one_thread
from harmonia.systems.vision import SYSTEM
from harmonia.systems.vision.data import CLASSES, SIZE, Images, Labels, jitter

#: models from the cheapest to the most expensive
MODEL_KINDS = SYSTEM.models  # as registered
TRAIN_PARAMS: dict[str, dict[str, float]] = {
    "small": {"epochs": 30, "lr": 3e-3, "batch": 32},
    "medium": {"epochs": 20, "lr": 3e-3, "batch": 32},
    "large": {"epochs": 12, "lr": 2e-3, "batch": 32},
}
#: a fine-tune (retrain) runs this many epochs from the weights in service: four reach
#: what six did (mean accuracy 0.941 over the three models under four drifts at middle
#: strength) in two thirds of the time, and HarmonE's retrain-every-window replays are
#: mostly fine-tunes
FINE_TUNE_EPOCHS = 4
FINE_TUNE_LR = 3e-3


def build(kind: str) -> nn.Module:
    """A fresh network of ``kind``; its input is ``(n, 1, SIZE, SIZE)``, its output logits."""
    if kind == "small":
        return nn.Sequential(
            nn.Flatten(), nn.Linear(SIZE * SIZE, 32), nn.ReLU(), nn.Linear(32, CLASSES)
        )
    if kind == "medium":
        return nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(16 * (SIZE // 4) ** 2, CLASSES),
        )
    if kind == "large":
        return nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(32 * (SIZE // 4) ** 2, 64),
            nn.ReLU(),
            nn.Linear(64, CLASSES),
        )
    raise ValueError(f"unknown model {kind!r}; known: {', '.join(MODEL_KINDS)}")


def fit(
    net: nn.Module,
    images: Images,
    labels: Labels,
    *,
    epochs: int,
    lr: float,
    batch: int,
    seed: int,
) -> nn.Module:
    """Adam on cross-entropy; mini-batches in a seeded order, each image jittered by a pixel;
    on one thread (`one_thread`: the weights then depend on the data and seed alone)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net.train()
    optimiser = torch.optim.Adam(net.parameters(), lr=lr)
    loss = nn.CrossEntropyLoss()
    targets = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    with one_thread():
        for _ in range(epochs):
            n = len(images)
            inputs = torch.from_numpy(jitter(images, rng)).unsqueeze(1)
            order = rng.permutation(n)
            for start in range(0, n, batch):
                chosen = torch.from_numpy(order[start : start + batch])
                optimiser.zero_grad()
                error = loss(net(inputs[chosen]), targets[chosen])
                error.backward()
                optimiser.step()
    return net.eval()


@dataclass
class VisionModel:
    """A trained classifier: its kind, network, and the condition it was trained for."""

    kind: str
    net: nn.Module
    params: dict[str, Any]
    #: ``clean`` for version 1; a retrain records the drift it was fine-tuned for
    condition: str = "clean"

    def predict(self, image: NDArray[np.float32]) -> tuple[int, float]:
        """The class of one ``(SIZE, SIZE)`` image and its confidence (top softmax)."""
        with torch.inference_mode():
            logits = self.net(torch.from_numpy(image).view(1, 1, SIZE, SIZE))[0]
            probabilities = torch.softmax(logits, dim=0)
            confidence, label = torch.max(probabilities, dim=0)
        return int(label), float(confidence)

    def predict_many(self, images: Images, batch: int = 512) -> tuple[Labels, NDArray[np.float64]]:
        """Classes and confidences of many images at once (tests and evaluation; never served)."""
        labels, confidences = [], []
        with torch.inference_mode():
            for start in range(0, len(images), batch):
                x = torch.from_numpy(np.ascontiguousarray(images[start : start + batch]))
                probabilities = torch.softmax(self.net(x.unsqueeze(1)), dim=1)
                confidence, label = torch.max(probabilities, dim=1)
                labels.append(label.numpy())
                confidences.append(confidence.numpy().astype(np.float64))
        return np.concatenate(labels).astype(np.int64), np.concatenate(confidences)

    def accuracy(self, images: Images, labels: Labels) -> float:
        """Share of ``images`` classified as ``labels``."""
        predicted, _ = self.predict_many(images)
        return float(np.mean(predicted == labels))

    def save(self, directory: Path) -> None:
        meta = {"kind": self.kind, "params": self.params, "condition": self.condition}
        (directory / "model.json").write_text(json.dumps(meta, indent=1))
        torch.save(self.net.state_dict(), directory / "weights.pt")

    @classmethod
    def load(cls, directory: Path) -> VisionModel:
        meta = json.loads((directory / "model.json").read_text())
        net = build(meta["kind"])
        net.load_state_dict(torch.load(directory / "weights.pt", weights_only=True))
        return cls(meta["kind"], net.eval(), meta["params"], meta.get("condition", "clean"))


def train(kind: str, images: Images, labels: Labels, *, seed: int = 0) -> VisionModel:
    """Train a classifier of ``kind`` from scratch on ``images``."""
    params = dict(TRAIN_PARAMS[kind]) if kind in TRAIN_PARAMS else {}
    torch.manual_seed(seed)  # the initial weights too: from the seed, not the process's state
    net = fit(
        build(kind),
        images,
        labels,
        epochs=int(params.get("epochs", 1)),
        lr=float(params.get("lr", 1e-3)),
        batch=int(params.get("batch", 32)),
        seed=seed,
    )
    return VisionModel(kind, net, params)


def fine_tune(
    model: VisionModel, images: Images, labels: Labels, condition: str, *, seed: int = 0
) -> VisionModel:
    """A copy of ``model`` fine-tuned on ``images`` (augmented for ``condition``)."""
    net = build(model.kind)
    net.load_state_dict(model.net.state_dict())
    params: dict[str, float] = {"epochs": FINE_TUNE_EPOCHS, "lr": FINE_TUNE_LR, "batch": 32}
    fit(net, images, labels, epochs=FINE_TUNE_EPOCHS, lr=FINE_TUNE_LR, batch=32, seed=seed)
    return VisionModel(model.kind, net, {**model.params, "fine_tune": params}, condition)
