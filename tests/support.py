"""Builders of telemetry and engine situations shared by the core's tests, and a free
loopback port for the tests that start servers."""

from __future__ import annotations

import math
import random
import socket
from collections.abc import Sequence
from functools import partial
from typing import Any

import numpy as np

from harmonia.core.knowledge import Knowledge
from harmonia.core.monitor import WindowSummary
from harmonia.core.policy import Policy, parse_policy
from harmonia.core.scoring import normalize_energy, score
from harmonia.core.strategies.base import Planned, Situation
from harmonia.core.telemetry import TelemetrySample
from harmonia.drift import KLDivergenceDetector

MODELS = ["linear", "svm", "lstm"]


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released), for a server under test."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def policy(**fields: Any) -> Policy:
    """A valid traffic policy, with ``fields`` overriding the defaults."""
    data: dict[str, Any] = {
        "policy": "test",
        "system": "traffic",
        "models": ["linear", "svm", "lstm"],
        "window": 50,
        "strategy": "harmone",
    }
    data.update(fields)
    return parse_policy(data)


def window(
    model: str,
    *,
    n: int = 50,
    r2: float = 0.9,
    energy_j: float = 0.005,
    latency_ms: float = 2.0,
    level: float = 100.0,
    start: float = 0.0,
    seed: int = 0,
    metrics: dict[str, float] | None = None,
) -> list[TelemetrySample]:
    """``n`` samples whose predictions reach about ``r2`` on targets around ``level``."""
    rng = random.Random(seed)
    targets = [rng.gauss(level, 20.0) for _ in range(n)]
    noise = 20.0 * max(0.0, 1.0 - r2) ** 0.5
    return [
        TelemetrySample(
            app="traffic",
            model=model,
            ts=start + i,
            latency_ms=latency_ms,
            energy_j=energy_j,
            energy_source="estimate",
            prediction=t + rng.gauss(0.0, noise),
            target=t,
            drift_value=t,
            metrics=dict(metrics or {}),
        )
        for i, t in enumerate(targets)
    ]


def feed(knowledge: Knowledge, samples: Sequence[TelemetrySample]) -> None:
    knowledge.observe_many(samples)


def normal(mean: float, n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(mean, 20.0, n)


class Harness:
    """Feeds hand-made window signals straight to a strategy, as the engine would."""

    def __init__(self, strategy: Any, active: str = "lstm", seed: int = 0, **fields: Any) -> None:
        self.strategy = strategy
        self.policy: Policy = policy(models=MODELS, **fields)
        self.knowledge = Knowledge(MODELS, active)
        self.rng = random.Random(seed)
        #: the drift detectors a situation offers the strategy (tests may configure them)
        self.detectors: dict[str, Any] = {"kl": partial(KLDivergenceDetector)}

    def window(
        self,
        quality: float,
        energy_j: float,
        drift_kl: float = math.nan,
        drift_values: np.ndarray | None = None,
    ) -> list[Planned]:
        objective = self.policy.objective
        signals = {
            "quality": quality,
            "energy_j": energy_j,
            "energy_norm": normalize_energy(energy_j, objective.energy_range_j),
            "score": score(quality, energy_j, objective),
            "drift.kl": drift_kl,
        }
        summary = WindowSummary(
            start=0.0,
            end=1.0,
            model=self.knowledge.active_model,
            version=self.knowledge.active_version,
            count=100,
            signals=signals,
            drift_values=np.asarray([] if drift_values is None else drift_values, dtype=float),
        )
        self.knowledge.profiles[self.knowledge.active_model].energy_j = energy_j
        self.knowledge.windows_closed += 1
        return self.strategy.decide(self._situation(summary))

    def look(
        self,
        drift_kl: float,
        drift_values: np.ndarray,
        features: dict[str, np.ndarray] | None = None,
    ) -> list[Planned]:
        """The latest inputs alone, between windows (no labels): what ``anticipate`` plans;
        ``features`` the values of the policy's other input features."""
        summary = WindowSummary(
            start=0.0,
            end=1.0,
            model=self.knowledge.active_model,
            version=self.knowledge.active_version,
            count=len(drift_values),
            signals={"drift.kl": drift_kl},
            drift_values=np.asarray(drift_values, dtype=float),
            features={k: np.asarray(v, dtype=float) for k, v in (features or {}).items()},
        )
        return self.strategy.anticipate(self._situation(summary))

    def _situation(self, summary: WindowSummary) -> Situation:
        return Situation(
            now=1.0,
            policy=self.policy,
            summary=summary,
            violations=(),
            knowledge=self.knowledge,
            rng=self.rng,
            detector_factories=self.detectors,
        )
