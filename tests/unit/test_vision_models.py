"""Training the vision models: a function of its data and seed alone."""

from __future__ import annotations

import numpy as np
import torch

from harmonia.systems.vision.data import load_split
from harmonia.systems.vision.models import train


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
