"""A strategy that chooses its first model (`harmonia`) does so live as in replay: the engine's
`begin` is asked on the application's first sample, once, and its switch is explained."""

from __future__ import annotations

from typing import Any

from harmonia.core.actions import ActionKind
from harmonia.core.versions import ModelVersion
from harmonia.policies import build_engine
from harmonia.server.loop import LiveLoop
from support import policy

#: linear promises nearly lstm's R² for a fiftieth of its energy
PROMISES = {
    "linear": {"r2": 0.90, "energy_j_per_inference": 0.00002},
    "svm": {"r2": 0.80, "energy_j_per_inference": 0.00001},
    "lstm": {"r2": 0.905, "energy_j_per_inference": 0.001},
}


def row(i: int, model: str = "lstm") -> dict[str, Any]:
    return {
        "app": "a",
        "stage": "main",
        "service": "default",
        "instance": "i",
        "trace_id": None,
        "model": model,
        "model_version": 1,
        "ts": 1000.0 + i,
        "latency_ms": 2.0,
        "energy_j": 0.001,
        "energy_source": "estimate",
        "prediction": 100.0,
        "target": 100.0 + (i % 7),
        "drift_value": 100.0,
        "metrics": {},
        "input_summary": None,
    }


def described_loop(**fields: Any) -> LiveLoop:
    loop = LiveLoop("a/default", policy(strategy="harmonia", **fields), clock=lambda: 5000.0)
    for model, stored in PROMISES.items():
        loop.describe_version(ModelVersion(model, 1, metadata=stored))
    return loop


def test_the_first_sample_starts_the_service_on_the_strategys_first_model() -> None:
    loop = described_loop()
    first = loop.ingest([row(i) for i in range(10)]).actions
    assert [(a.kind, a.model, a.trigger) for a in first] == [
        (ActionKind.SWITCH_MODEL, "linear", "first model")
    ]
    assert "lstm was serving" in first[0].reason
    # asked once: later batches (still lstm until the system applies it) do not ask again
    assert loop.ingest([row(i) for i in range(10, 20)]).actions == []
    # nothing was reacted to, so no cooldown started
    assert loop.knowledge.last_action_window is None


def test_no_switch_where_the_service_already_serves_the_first_model() -> None:
    loop = described_loop()
    assert loop.ingest([row(i, "linear") for i in range(10)]).actions == []


def test_a_loop_rebuilt_on_stored_telemetry_does_not_start_over() -> None:
    loop = described_loop()
    loop.restore(("lstm", 1), None)
    assert loop.ingest([row(i) for i in range(10)]).actions == []


def test_a_strategy_without_a_first_model_begins_with_nothing() -> None:
    engine = build_engine(policy(strategy="harmone"))
    assert engine.begin(engine.new_knowledge(), 0.0) is None
