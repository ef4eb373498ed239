"""The pipeline's ensemble router: the chosen members run on one frame at once, their
answers combined confidence-weighted, a member past the deadline left out of the verdict."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from harmonia.orchestration.ensembles import (
    ConsumerContract,
    ServiceProfile,
    select_ensemble,
)
from harmonia.sdk import new_trace_id, traceparent
from harmonia.systems.pipeline.router import EnsembleRouter
from harmonia.systems.pipeline.stages import Answer, Frame


def frame(label: int = 3) -> Frame:
    image = np.zeros((8, 8), dtype=np.float32)
    return Frame(0, image, label, "clean", traceparent(new_trace_id()))


def member(name: str, label: int, confidence: float, gate: threading.Event | None = None):  # type: ignore[no-untyped-def]
    def classify(f: Frame) -> Answer:
        if gate is not None:
            gate.wait(10)
        return Answer(f.index, name, label, confidence, f.label, f.traceparent)

    return classify


def test_answers_are_combined_confidence_weighted() -> None:
    router = EnsembleRouter(
        {
            "fast": member("fast", 3, 0.6),
            "accurate": member("accurate", 5, 0.7),
            "tiny": member("tiny", 3, 0.5),
        },
        deadline_ms=5000,
    )
    verdict = router(frame(label=3))
    assert verdict is not None
    # class 3: (0.6 + 0.5) / 3 beats class 5: 0.7 / 3, though 0.7 is the most confident
    assert verdict.label == 3 and verdict.correct and not verdict.agree
    assert verdict.confidence == pytest.approx(1.1 / 3)
    weighted = EnsembleRouter(
        {"fast": member("fast", 3, 0.6), "accurate": member("accurate", 5, 0.7)},
        deadline_ms=5000,
        weights={"fast": 1, "accurate": 3},
    )
    assert weighted(frame()).label == 5  # type: ignore[union-attr]


def test_a_member_past_the_deadline_is_left_out() -> None:
    gate = threading.Event()
    router = EnsembleRouter(
        {"fast": member("fast", 3, 0.6), "slow": member("slow", 5, 0.99, gate)},
        deadline_ms=200,
    )
    try:
        verdict = router(frame())
    finally:
        gate.set()
    assert verdict is not None and verdict.label == 3 and verdict.chosen == "fast"
    assert router.late == 1 and router.verdicts == 1 and router.correct == 1


def test_a_router_follows_a_consumers_selection() -> None:
    profiles = [
        ServiceProfile.model_validate(
            {
                "name": name,
                "accuracy": {"cat": accuracy},
                "confidence": 0.8,
                "latency_ms": latency,
                "throughput_rps": 100,
                "cost": 1,
            }
        )
        for name, accuracy, latency in (
            ("fast", 0.8, 20),
            ("accurate", 0.9, 80),
            ("slow", 0.95, 900),
        )
    ]
    contract = ConsumerContract.model_validate(
        {
            "metrics": {"accuracy": {"weight": 1, "aggregation": "max", "bounds": [0, 1]}},
            "deadline_ms": 100,
        }
    )
    selection = select_ensemble(profiles, contract)
    chosen = {m.service for m in selection.members}
    assert "slow" not in chosen  # it cannot answer within the deadline
    members = {name: member(name, 3, 0.7) for name in ("fast", "accurate", "slow")}
    router = EnsembleRouter.from_selection(selection, members, deadline_ms=100)
    assert set(router.members) == chosen
    with pytest.raises(ValueError, match="no callable for"):
        EnsembleRouter.from_selection(selection, {"fast": members["fast"]}, deadline_ms=100)
