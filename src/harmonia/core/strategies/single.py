"""`single`: one model throughout, optionally retrained every N windows (a baseline)."""

from __future__ import annotations

from typing import ClassVar

from harmonia.core.strategies.base import Planned, Situation, periodic_retrain


class SingleStrategy:
    """Never switches. With ``retrain_every`` it retrains the model in service periodically.

    >>> SingleStrategy(retrain_every=10).retrain_every
    10
    """

    name: ClassVar[str] = "single"
    detectors: ClassVar[tuple[str, ...]] = ()

    def __init__(self, retrain_every: int | None = None) -> None:
        if retrain_every is not None and retrain_every < 1:
            raise ValueError(f"retrain_every must be >= 1 window, got {retrain_every}")
        self.retrain_every = retrain_every

    def decide(self, situation: Situation) -> list[Planned]:
        return periodic_retrain(situation, self.retrain_every, situation.active_model)
