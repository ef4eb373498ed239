"""`harmonia` chooses the model it serves first from the promises stored with the versions."""

from __future__ import annotations

from harmonia.core.knowledge import Knowledge
from harmonia.core.strategies.harmonia import HarmoniaStrategy
from harmonia.core.versions import ModelVersion
from support import policy


def knowledge(metrics: dict[str, dict[str, float]]) -> Knowledge:
    known = Knowledge(["linear", "svm", "lstm"], "lstm")
    for model, stored in metrics.items():
        known.add_version(ModelVersion(model, 1, metadata=stored))
        known.activate(model, 1)
    known.activate("lstm")
    return known


def test_first_model_is_the_cheapest_good_promise() -> None:
    served = policy(strategy="harmonia", initial_model="lstm")
    stored = {
        "linear": {"r2": 0.90, "energy_j_per_inference": 0.00002},
        "svm": {"r2": 0.86, "energy_j_per_inference": 0.00001},
        "lstm": {"r2": 0.905, "energy_j_per_inference": 0.001},
    }
    assert HarmoniaStrategy().first_model(served, knowledge(stored)) == "linear"
    # a much better promise is worth its energy
    stored["lstm"]["r2"] = 0.95
    assert HarmoniaStrategy().first_model(served, knowledge(stored)) == "lstm"


def test_first_model_without_promises_is_the_model_in_service() -> None:
    served = policy(strategy="harmonia", initial_model="svm")
    assert HarmoniaStrategy().first_model(served, Knowledge(served.models, "svm")) == "svm"
    # live, the model in service is what the system reports, not the policy's start model
    assert HarmoniaStrategy().first_model(served, Knowledge(served.models, "lstm")) == "lstm"
