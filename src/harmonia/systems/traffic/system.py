"""The traffic system as a managed system: serve the model in service, carry out actions.

It keeps its models in a `ModelRegistry`: version 1 of each is trained on first use from the
training data; a retrain fits the model on the most recent window of the stream and stores a
new version with the fingerprint of that window and its own held-out R²; a reuse loads an
archived version back from its own artifacts. The alias ``current`` of each model names the
version it serves.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from harmonia.core.knowledge import fingerprint
from harmonia.energy import EnergyMeter, measure_per_call
from harmonia.registry import CURRENT, ModelRegistry, RegisteredVersion
from harmonia.systems._training import warm_up_training
from harmonia.systems.serving import ServedModels
from harmonia.systems.traffic.data import LOOKBACK, lag_windows
from harmonia.systems.traffic.models import MODEL_KINDS, Menu, TrafficModel, holdout_r2, train

#: predictions timed per model when measuring its energy per inference (per burst, `BURSTS` bursts)
CALIBRATION_CALLS = 3000
#: HarmonE retrains on the last 1,200 observations; so do we
RETRAIN_WINDOW = 1200


@dataclass(frozen=True)
class Retrained:
    """What a retrain produced, and what it cost."""

    version: RegisteredVersion
    joules: float
    seconds: float


class TrafficSystem(ServedModels[TrafficModel]):
    """The managed traffic service, in-process: one model serves at a time."""

    def __init__(
        self,
        registry: ModelRegistry,
        menu: Menu,
        meter: EnergyMeter,
        *,
        seed: int = 0,
        retrain_window: int = RETRAIN_WINDOW,
        models: Sequence[str] = MODEL_KINDS,
    ) -> None:
        super().__init__(registry, models, TrafficModel.load)
        self.menu = menu
        self.meter = meter
        self.seed = seed
        self.retrain_window = retrain_window

    # -- setting up ---------------------------------------------------------------------
    def ensure_trained(
        self, training: np.ndarray, progress: Callable[[str], None] | None = None
    ) -> None:
        """Train and register version 1 of every model that has none yet (first use)."""
        windows, _ = lag_windows(training)
        calibration = windows.tolist()  # what a live caller passes: a list of floats per call
        for kind in self.models:
            if self.registry.latest(kind) is not None:
                continue
            if progress:
                progress(f"training {kind} ({self.menu} menu)")
            warm_up_training()  # not charged to this training
            with self.meter.measure() as measurement:
                model = train(kind, self.menu, training, seed=0)
            cost = measurement.reading
            assert cost is not None
            joules, seconds = measure_per_call(
                self.meter, model.predict, calibration, calls=CALIBRATION_CALLS
            )
            expected_r2 = holdout_r2(kind, self.menu, training)
            version = self.registry.register(
                kind,
                model.save,
                fingerprint=fingerprint(training),
                metrics={
                    "r2": expected_r2,
                    "energy_j_per_inference": joules,
                    "latency_ms": seconds * 1e3,
                    "training_joules": cost.joules,
                    "training_seconds": cost.seconds,
                },
                params={**model.params, "menu": self.menu},
                training={"rows": len(training), "source": "flow_data_train.csv", "seed": 0},
            )
            self.registry.set_alias(kind, CURRENT, version.version, reason="first training")

    def energy_per_inference(self) -> dict[str, float]:
        """Measured joules per prediction of each model (version 1's calibration).

        A retrained version keeps its model's architecture and inference path, so it costs
        what version 1 costs; using one figure per model keeps replays deterministic.
        """
        return {
            kind: self.registry.get(kind, 1).metrics["energy_j_per_inference"]
            for kind in self.models
        }

    # -- serving ------------------------------------------------------------------------
    def predict(self, window: Sequence[float]) -> float:
        """The model in service's forecast; it is kept loaded, so serving reads no file."""
        return self._load_serving().predict(window)

    # -- effector (switch and reuse: `ServedModels`) -----------------------------------------
    def retrain(self, kind: str, recent: np.ndarray, reason: str = "") -> Retrained:
        """Fit ``kind`` on the most recent observations and serve the new version."""
        if len(recent) <= LOOKBACK + 10:
            raise ValueError(f"retraining needs more than {LOOKBACK + 10} recent values")
        data = recent[-self.retrain_window :]
        previous = self.model(kind)
        warm_up_training()  # not charged to this training
        # what the new version reads is measured as version 1's was, and charged to the
        # retrain: without it the version would borrow version 1's promise
        with self.meter.measure() as measurement:
            model = train(kind, self.menu, data, seed=self.seed, warm_start=previous)
            expected_r2 = holdout_r2(kind, self.menu, data, seed=self.seed, warm_start=previous)
        reading = measurement.reading
        assert reading is not None
        version = self.registry.register(
            kind,
            model.save,
            fingerprint=fingerprint(data),
            metrics={
                "r2": expected_r2,
                "energy_j_per_inference": self.energy_per_inference()[kind],
                "training_joules": reading.joules,
                "training_seconds": reading.seconds,
            },
            params={**model.params, "menu": self.menu},
            training={"rows": len(data), "source": "recent stream", "seed": self.seed},
        )
        self._keep(kind, version.version, model)
        self.registry.set_alias(kind, CURRENT, version.version, reason=reason or "retrain")
        self.switch(kind)
        return Retrained(version, reading.joules, reading.seconds)
