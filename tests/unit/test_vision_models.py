"""Training the vision models (a function of its data and seed alone) and the shipped ones."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from harmonia.systems.vision.data import load_split, training_and_validation
from harmonia.systems.vision.models import MODEL_KINDS, train
from harmonia.systems.vision.shipped import MADE, WEIGHTS, digest, shipped_model


def test_training_is_the_same_whatever_state_the_process_random_generators_are_in() -> None:
    """A network's initial weights come from the seed, not from whatever PyTorch's global
    generator holds: the first model a process trained used to start from unseeded weights,
    so each machine (and each run) trained a different small CNN."""
    split = load_split()
    images, labels = split.train_images[:64], split.train_labels[:64]
    weights = []
    for state in (1, 2):
        torch.manual_seed(state)
        net = train("small", images, labels, seed=0).net
        weights.append([p.detach().numpy().copy() for p in net.parameters()])
    for first, second in zip(*weights, strict=True):
        np.testing.assert_array_equal(first, second)


def test_training_is_the_same_whatever_the_process_thread_count() -> None:
    """PyTorch splits reductions across its intra-op threads, so one seed trained different
    weights with a different thread count (the replay lab trains on one thread, a live run
    on every core): training runs on one thread whatever the process uses."""
    split = load_split()
    images, labels = split.train_images[:96], split.train_labels[:96]
    before = torch.get_num_threads()
    weights = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            net = train("large", images, labels, seed=0).net
            weights.append([p.detach().numpy().copy() for p in net.parameters()])
            assert torch.get_num_threads() == threads  # the caller's setting is restored
    finally:
        torch.set_num_threads(before)
    for first, second in zip(*weights, strict=True):
        np.testing.assert_array_equal(first, second)


def test_every_model_ships_its_version_one_and_it_reads_the_digits() -> None:
    """Version 1 ships with the package (other CPUs train other weights from one seed): every
    model has its weights, as recorded when they were made, and they classify the held-out
    validation images as a trained model does."""
    made = json.loads((WEIGHTS / MADE).read_text())
    assert set(made["sha256"]) == set(MODEL_KINDS)
    _, _, val_images, val_labels = training_and_validation()
    for kind in MODEL_KINDS:
        assert digest(WEIGHTS / kind) == made["sha256"][kind], f"{kind} retrained alone"
        model = shipped_model(kind)
        assert model is not None and model.kind == kind and model.condition == "clean"
        assert model.accuracy(val_images, val_labels) > 0.9, kind


def test_a_model_without_shipped_weights_is_none(tmp_path: Path) -> None:
    assert shipped_model("small", tmp_path) is None
