"""What a measured training run must not be charged for."""

from __future__ import annotations

from functools import cache


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
