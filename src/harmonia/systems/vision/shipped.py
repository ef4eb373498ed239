"""Version 1 of each vision model, trained once and shipped with the package.

PyTorch trains other weights from the same seed on another CPU (its kernels round
differently on another instruction set, and twelve epochs amplify that): between two
machines the large CNN's held-out accuracy moved from 0.967 to 0.944, which reversed the
models' ranking and every figure built on it, the settings tuned on it among them. Shipped
weights make the replay lab's vision figures the same wherever it runs, except the energies
(measured where it runs) and the fine-tunes a replay makes.

The weights are those `harmonia.systems.vision.models.train` gives with seed 0 on the
training images of `harmonia.systems.vision.data.load_split`; ``weights/NOTICE.md`` says
where and with what they were made. To make them again::

    .venv/bin/python -m harmonia.systems.vision.shipped
"""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
from collections.abc import Callable
from pathlib import Path

from harmonia.systems.vision.data import training_and_validation
from harmonia.systems.vision.models import MODEL_KINDS, VisionModel, train

#: where the weights lie, one folder per model (`VisionModel.save`'s layout)
WEIGHTS = Path(__file__).parent / "weights"
#: the seed they were trained with
SEED = 0
#: what every shipped model's ``training`` record says of its origin
SOURCE = "sklearn digits (weights shipped with harmonia)"
#: what `make_weights` records beside the weights
MADE = "made.json"


def shipped_model(kind: str, weights: Path = WEIGHTS) -> VisionModel | None:
    """Version 1 of ``kind`` as shipped, or None where it is not (a model added since)."""
    folder = weights / kind
    if not (folder / "weights.pt").is_file():
        return None
    return VisionModel.load(folder)


def make_weights(
    weights: Path = WEIGHTS, progress: Callable[[str], None] | None = None
) -> dict[str, object]:
    """Train every model from scratch, store it under ``weights`` and write ``made.json``:
    the PyTorch version, the processor, and each weights file's SHA-256 (which a test
    checks, so that weights retrained one at a time do not pass for a set)."""
    import torch

    images, labels, _, _ = training_and_validation()
    digests: dict[str, str] = {}
    for kind in MODEL_KINDS:
        if progress:
            progress(f"training {kind}")
        model = train(kind, images, labels, seed=SEED)
        folder = weights / kind
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        model.save(folder)
        digests[kind] = digest(folder)
    made: dict[str, object] = {
        "torch": torch.__version__,
        "machine": _processor(),
        "seed": SEED,
        "sha256": digests,
    }
    (weights / MADE).write_text(json.dumps(made, indent=1) + "\n")
    return made


def _processor() -> str:
    """The processor's model name where Linux tells it, else its architecture."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.machine()


def digest(folder: Path) -> str:
    """SHA-256 of a model folder's weights file."""
    return hashlib.sha256((folder / "weights.pt").read_bytes()).hexdigest()


if __name__ == "__main__":  # pragma: no cover - run by hand, see the module notes
    print(json.dumps(make_weights(progress=print), indent=1))
