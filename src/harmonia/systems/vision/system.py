"""The vision system as a managed system: serve the classifier in service, carry out actions.

Its models live in a `ModelRegistry` like the traffic system's: version 1 of each comes with
the package (`harmonia.systems.vision.shipped`; trained here where it does not); a retrain
fine-tunes the model in service on the labelled training images *transformed to look like
the recent stream* (the drift a `ConditionMonitor` names in the recent images, at the
strength it estimates), and stores a new version with that condition and the fingerprint of
the images it was tuned on, so that `reuse_version` brings it back when the condition
returns. Labels never come from the stream: the camera has none.

Each sample reports its class (``prediction``), the ``confidence`` of it, whether it was
``correct`` (when a label arrives), the image's mean luminance (``drift_value``) and its
``sharpness`` (`harmonia.systems.vision.data.input_features`).
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
from harmonia.systems.vision.conditions import ConditionMonitor, Diagnosis
from harmonia.systems.vision.data import (
    Images,
    input_features,
    jitter,
    mean_luminance,
    reference_images,
    training_and_validation,
)
from harmonia.systems.vision.models import MODEL_KINDS, VisionModel, fine_tune, train
from harmonia.systems.vision.scenario import STRENGTH_RANGE, apply
from harmonia.systems.vision.shipped import SEED, SOURCE, shipped_model

#: predictions timed per model when measuring its energy per inference (per burst, `BURSTS` bursts)
CALIBRATION_CALLS = 600
#: jittered copies of the validation images a version's expected accuracy is measured on:
#: one draw of the camera's wobble moves a model's accuracy on the 216 validation images by
#: up to two points either way (standard deviation 1.3 points for the small CNN), enough to
#: rank models a point apart the wrong way round; eight draws average that out
VALIDATION_DRAWS = 8
#: the stress test: each condition the camera is known to meet, mild and strong (within the
#: strengths the streams show). Models differ in what they withstand (the small CNN reads
#: dark images almost as well as clean ones, where the larger ones fall to near chance), and
#: by how much changes with the strength (the large CNN's lead under noise grows with it)
STRESS_STRENGTHS = {
    "dark-mild": ("dark", 0.55),
    "dark-strong": ("dark", 0.8),
    "fog-mild": ("fog", 0.45),
    "fog-strong": ("fog", 0.7),
    "noise-mild": ("noise", 0.25),
    "noise-strong": ("noise", 0.4),
    "blur-mild": ("blur", 1.0),
    "blur-strong": ("blur", 1.8),
}
#: recent images a retrain looks at to name the drift (one decision window: older images
#: may predate the drift, and a mixed window would misjudge its strength)
RETRAIN_WINDOW = 50


@dataclass(frozen=True)
class Retrained:
    """What a retrain produced, what it cost, and the drift it was tuned for."""

    version: RegisteredVersion
    joules: float
    seconds: float
    diagnosis: Diagnosis


def expected_quality(
    model: VisionModel, images: Images, labels: np.ndarray, rng: np.random.Generator
) -> tuple[float, float]:
    """Accuracy and mean confidence on ``VALIDATION_DRAWS`` jittered copies of ``images``,
    as the camera would show them: what a version stores as its expected quality."""
    copies = np.concatenate([jitter(images, rng) for _ in range(VALIDATION_DRAWS)])
    predicted, confidence = model.predict_many(copies)
    correct = predicted == np.tile(labels, VALIDATION_DRAWS)
    return float(np.mean(correct)), float(confidence.mean())


def stress_test(
    model: VisionModel, images: Images, labels: np.ndarray, seed: int
) -> dict[str, float]:
    """The model's accuracy under each condition of ``STRESS_STRENGTHS`` (jittered like the
    camera's images), with the means of what each sample reports of its image on the images
    it was measured on, the drift value (luminance) and the `input_features`:
    ``context.dark-mild.accuracy``, ``context.dark-mild.drift_mean``,
    ``context.dark-mild.sharpness_mean``... A strategy reads the promise of the condition
    whose inputs a window resembles (`harmonia.core.strategies.stress`). Every model is
    tested on the same images. The means are taken on the images as the stream shows them,
    jittered first and then drifted (a shift's black border alone raises the sharpness by a
    fifth)."""
    metrics: dict[str, float] = {}
    for name, (condition, strength) in STRESS_STRENGTHS.items():
        rng = np.random.default_rng(seed)
        stressed = apply(condition, images, strength, rng)
        accuracy, _ = expected_quality(model, stressed, labels, rng)
        metrics[f"context.{name}.accuracy"] = accuracy
        shown = np.random.default_rng(seed)
        seen = apply(condition, jitter(images, shown), strength, shown)
        metrics[f"context.{name}.drift_mean"] = float(mean_luminance(seen).mean())
        for feature, values in input_features(seen).items():
            metrics[f"context.{name}.{feature}_mean"] = float(values.mean())
    return metrics


def own_inputs(images: Images) -> dict[str, float]:
    """Mean and standard deviation of each of `input_features` on the images a version was
    trained on (``inputs.sharpness_mean``, ``inputs.sharpness_std``): with its fingerprint
    (the drift values'), what a stress test's conditions are told apart from."""
    metrics: dict[str, float] = {}
    for feature, values in input_features(images).items():
        metrics[f"inputs.{feature}_mean"] = float(values.mean())
        metrics[f"inputs.{feature}_std"] = float(values.std())
    return metrics


class VisionSystem(ServedModels[VisionModel]):
    """The managed camera classifier, in-process: one model serves at a time."""

    def __init__(
        self,
        registry: ModelRegistry,
        meter: EnergyMeter,
        *,
        seed: int = 0,
        retrain_window: int = RETRAIN_WINDOW,
        models: Sequence[str] = MODEL_KINDS,
        shipped_weights: bool = True,
        stress_test: bool = True,
    ) -> None:
        super().__init__(registry, models, VisionModel.load)
        self.meter = meter
        #: version 1 from the weights shipped with the package (same on every machine)
        self.shipped_weights = shipped_weights
        #: whether a retrain measures the new version under `STRESS_STRENGTHS` (`stress_test`:
        #: in harmone's replays it took longer than the fine-tune itself); a replay spares a
        #: strategy that reads none of it
        self.stress_test = stress_test
        self.seed = seed
        self.retrain_window = retrain_window
        self._monitor: ConditionMonitor | None = None

    # -- data the system holds ---------------------------------------------------------------
    @property
    def monitor(self) -> ConditionMonitor:
        """Names the drift of recent images against the clean training images."""
        if self._monitor is None:
            self._monitor = ConditionMonitor(reference_images(), seed=self.seed)
        return self._monitor

    # -- setting up ---------------------------------------------------------------------------
    def ensure_trained(self, progress: Callable[[str], None] | None = None) -> None:
        """Register version 1 of every model that has none yet (first use).

        Version 1 is the shipped weights (`harmonia.systems.vision.shipped`), or, with
        ``shipped_weights`` off or for a model shipped without them, trained here on the
        first 80 % of the training images, its training energy then stored too. Its
        accuracy and mean confidence on the other 20 % (`expected_quality`) are stored as
        its expected quality, with its energy per inference and the measured energy of one
        fine-tune (``retrain_joules``: what a retrain will cost, which a strategy prices).
        """
        images, labels, val_images, val_labels = training_and_validation()
        calibration = list(val_images)  # one image per call
        for kind in self.models:
            if self.registry.latest(kind) is not None:
                continue
            warm_up_training()  # charged to neither the training nor the fine-tune below
            model = shipped_model(kind) if self.shipped_weights else None
            training: dict[str, float] = {}
            if model is None:
                if progress:
                    progress(f"training {kind} (vision)")
                with self.meter.measure() as measurement:
                    model = train(kind, images, labels, seed=SEED)
                cost = measurement.reading
                assert cost is not None
                training = {"training_joules": cost.joules, "training_seconds": cost.seconds}
            elif progress:
                progress(f"measuring {kind} (vision, shipped weights)")
            joules, seconds = measure_per_call(
                self.meter, model.predict, calibration, calls=CALIBRATION_CALLS
            )
            # every model on the same jittered copies: paired, and whatever else is trained
            rng = np.random.default_rng(self.seed)
            accuracy, confidence = expected_quality(model, val_images, val_labels, rng)
            with self.meter.measure() as tuning:
                fine_tune(model, images, labels, "clean", seed=1)
            retrain = tuning.reading
            assert retrain is not None
            version = self.registry.register(
                kind,
                model.save,
                fingerprint=fingerprint(mean_luminance(reference_images())),
                metrics={
                    "accuracy": accuracy,
                    "confidence": confidence,
                    "energy_j_per_inference": joules,
                    "latency_ms": seconds * 1e3,
                    **training,
                    "retrain_joules": retrain.joules,
                    **own_inputs(reference_images()),
                    **stress_test(model, val_images, val_labels, self.seed),
                },
                params={**model.params, "condition": "clean"},
                training={
                    "rows": len(images),
                    "source": "sklearn digits" if training else SOURCE,
                    "seed": SEED,
                },
            )
            self.registry.set_alias(kind, CURRENT, version.version, reason="first training")

    def energy_per_inference(self) -> dict[str, float]:
        """Measured joules per prediction of each model (version 1's calibration); a
        fine-tuned version keeps its architecture, so it costs what version 1 costs."""
        return {
            kind: self.registry.get(kind, 1).metrics["energy_j_per_inference"]
            for kind in self.models
        }

    # -- serving ------------------------------------------------------------------------------
    def predict(self, image: np.ndarray) -> tuple[int, float]:
        """The class of one image and its confidence, by the model in service."""
        return self._load_serving().predict(image)

    # -- effector (switch and reuse: `ServedModels`) -----------------------------------------
    def augmented(self, diagnosis: Diagnosis) -> tuple[Images, np.ndarray]:
        """The labelled training images as they would look under the diagnosed drift."""
        images, labels, _, _ = training_and_validation()
        if diagnosis.condition not in STRENGTH_RANGE:
            return images, labels
        rng = np.random.default_rng(self.seed + 7)
        return apply(diagnosis.condition, images, diagnosis.strength, rng), labels

    def retrain(self, kind: str, recent: Images, reason: str = "") -> Retrained:
        """Fine-tune ``kind`` for the drift the recent images show; serve the new version."""
        if len(recent) < 10:
            raise ValueError("retraining needs at least 10 recent images to name the drift")
        window = np.asarray(recent[-self.retrain_window :], dtype=np.float32)
        previous = self.model(kind)
        started_on = self.registry.alias(kind, CURRENT)
        warm_up_training()  # not charged to this training
        with self.meter.measure() as measurement:
            diagnosis = self.monitor.diagnose(window)
            images, labels = self.augmented(diagnosis)
            model = fine_tune(previous, images, labels, diagnosis.condition, seed=self.seed)
        reading = measurement.reading
        assert reading is not None
        _, _, clean_val_images, val_labels = training_and_validation()
        val_images = clean_val_images
        rng = np.random.default_rng(self.seed + 11)
        if diagnosis.condition in STRENGTH_RANGE:
            val_images = apply(diagnosis.condition, val_images, diagnosis.strength, rng)
        accuracy, confidence = expected_quality(model, val_images, val_labels, rng)
        v1 = self.registry.get(kind, 1).metrics
        version = self.registry.register(
            kind,
            model.save,
            fingerprint=fingerprint(mean_luminance(images)),
            metrics={
                "accuracy": accuracy,
                "confidence": confidence,
                "energy_j_per_inference": v1["energy_j_per_inference"],
                "training_joules": reading.joules,
                "training_seconds": reading.seconds,
                "retrain_joules": reading.joules,
                **own_inputs(jitter(images, np.random.default_rng(self.seed + 3))),
                **(
                    stress_test(model, clean_val_images, val_labels, self.seed)
                    if self.stress_test
                    else {}
                ),
            },
            params={
                **model.params,
                "condition": diagnosis.condition,
                "strength": diagnosis.strength,
                "from_version": started_on.version if started_on else None,
            },
            training={
                "rows": len(images),
                "source": f"training images under {diagnosis.condition}",
                "seed": self.seed,
            },
        )
        self._keep(kind, version.version, model)
        self.registry.set_alias(kind, CURRENT, version.version, reason=reason or "retrain")
        self.switch(kind)
        return Retrained(version, reading.joules, reading.seconds, diagnosis)
