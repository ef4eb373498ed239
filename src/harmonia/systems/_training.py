"""What a training run must not depend on or be charged for: the process's thread count,
PyTorch's lazy imports."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache


@contextmanager
def one_thread() -> Iterator[None]:
    """Run the block on one PyTorch intra-op thread, then restore the caller's count.

    PyTorch splits a reduction across its threads, so one seed trained different weights
    with a different thread count: the large vision CNN reached a validation accuracy of
    0.972 trained on one thread, 0.958 on two and 0.963 on three. The replay lab runs on one
    thread and a live run on every core, so training pins it.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@cache
def warm_up_training() -> None:
    """Import what PyTorch loads lazily on a process's first optimiser (``torch._dynamo``,
    about 3 s of imports), before a meter starts: otherwise the first retrain of a process
    is charged that time as training energy, and a strategy that prices retrains by their
    measured cost decides differently on the first retrain than on the same one later.

    >>> warm_up_training()
    """
    import torch

    torch.optim.Adam([torch.zeros(1, requires_grad=True)])
