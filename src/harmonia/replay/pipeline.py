"""The pipeline replayed in event time, with the decision code a live run uses.

One `Engine` per classify service, each with its own `Knowledge` and its own fork of the
trained registry, decides over that service's telemetry at its policy's cadence; its actions
are applied in-process, as `harmonia.replay.runner` applies a one-service system's (a
retrain really trains, a reuse really loads the archived version). The camera makes the
frames with the same code as live (`harmonia.systems.pipeline.stages.Camera`), the aggregate
votes with the same `vote`. Every stage's samples carry their frame's trace id, so the
result also holds `harmonia.core.pipeline.summarize_pipeline`'s per-stage and end-to-end
signals over them.

Energy: a classify service's per inference is its model's measured figure (as in the lab),
plus its retrains' measured energy spread over the frames; the camera's and the aggregate's
are measured over the whole stream and shared equally among the frames.

The replay lab runs it through `harmonia.replay.pipeline_lab` (``harmonia replay pipeline``):
the approaches, the spec and the lab's rows live there.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harmonia.core.actions import ActionKind
from harmonia.core.pipeline import PipelineSummary, summarize_pipeline
from harmonia.core.policy import Policy
from harmonia.core.telemetry import TelemetrySample
from harmonia.energy import EnergyMeter, EstimateMeter
from harmonia.policies import build_engine, parse_policy_text, presets
from harmonia.registry import CURRENT, ModelRegistry
from harmonia.replay.oracle import with_training
from harmonia.replay.results import ActionRecord
from harmonia.replay.runner import apply_action
from harmonia.systems.pipeline import (
    AGGREGATE,
    CAMERA,
    CAMERA_MODEL,
    CAMERA_SERVICE,
    CLASSIFY,
    SERVICES,
    SYSTEM,
    VOTE_MODEL,
    VOTE_SERVICE,
    application,
)
from harmonia.systems.pipeline.stages import Answer, Camera, Frame, vote
from harmonia.systems.vision.scenario import Scenario
from harmonia.systems.vision.system import VisionSystem

#: event time between two frames: one a second
FRAME_SECONDS = 1.0
Progress = Callable[[str, int, int], None]


@dataclass
class ServiceReplay:
    """What one classify service did over the replay."""

    service: str
    policy: str
    #: the model (and its version) in service for each frame
    models: list[str] = field(default_factory=list)
    versions: list[int] = field(default_factory=list)
    actions: list[ActionRecord] = field(default_factory=list)
    accuracy: float = float("nan")
    #: mean energy per inference, its retrains' energy spread over the frames included
    energy_j_per_inference: float = 0.0
    training_joules: float = 0.0
    inference_ms: float = 0.0

    def count(self, kind: ActionKind) -> int:
        """How many actions of ``kind`` the service took (the lab reports each kind)."""
        return sum(action.kind == kind.value for action in self.actions)

    @property
    def switches(self) -> int:
        return self.count(ActionKind.SWITCH_MODEL)

    @property
    def retrains(self) -> int:
        return self.count(ActionKind.RETRAIN)

    @property
    def reuses(self) -> int:
        return self.count(ActionKind.REUSE_VERSION)


@dataclass
class PipelineReplay:
    """What the pipeline achieved over a scenario."""

    frames: int
    #: the ensemble's accuracy (the aggregate's verdicts)
    accuracy: float
    services: dict[str, ServiceReplay]
    #: mean joules per frame in each stage (classify: both services, retrains spread)
    energy_per_stage: dict[str, float]
    #: joules per frame end to end: every stage's inference, retrains spread evenly
    #: (`with_training`: the score counts them, as the energy per stage does)
    energy_per_frame: np.ndarray
    #: the aggregate's verdict per frame: whether it was right, which service won
    correct: np.ndarray
    chosen: list[str]
    #: the per-service, per-stage and end-to-end signals over every stage's samples
    summary: PipelineSummary
    regions: list[tuple[int, int]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def end_to_end_energy_j(self) -> float:
        """Mean joules per frame through the whole pipeline, retrains included."""
        return float(sum(self.energy_per_stage.values()))


def preset_policy(service: str) -> Policy:
    """The shipped policy of a classify service (``pipeline-<service>``)."""
    name = SYSTEM.live_presets[service]
    return parse_policy_text(presets()[name], name)


def _row(
    service: str,
    stage: str,
    model: str,
    version: int | None,
    ts: float,
    latency_s: float,
    energy_j: float,
    source: str,
    trace_id: str,
    *,
    prediction: float | None = None,
    target: float | None = None,
    drift_value: float | None = None,
    metrics: dict[str, float] | None = None,
) -> dict[str, Any]:
    """One sample as a stage's probe sends it live, so that the engine's `Knowledge` and
    `summarize_pipeline` read the replay as they read a live run."""
    return {
        "app": SYSTEM.name,
        "stage": stage,
        "service": service,
        "instance": "replay",
        "trace_id": trace_id,
        "model": model,
        "model_version": version,
        "ts": ts,
        "latency_ms": latency_s * 1e3,
        "energy_j": energy_j,
        "energy_source": source,
        "prediction": prediction,
        "target": target,
        "drift_value": drift_value,
        "metrics": metrics or {},
        "input_summary": None,
    }


def replay_pipeline(
    scenario: Scenario,
    fast_policy: Policy | None = None,
    accurate_policy: Policy | None = None,
    *,
    registry: ModelRegistry,
    meter: EnergyMeter | None = None,
    seed: int = 0,
    keep_registries: Path | None = None,
    progress: Progress | None = None,
) -> PipelineReplay:
    """Replay ``scenario`` through the pipeline: camera, both classify services (each under
    its policy, default its shipped preset, starting from version 1 of ``registry``'s
    models) and the aggregate's vote. Each service works on its own fork of ``registry``
    (trained: see `harmonia.systems.vision.system.VisionSystem.ensure_trained`), a
    temporary one unless ``keep_registries`` names a folder for them."""
    meter = meter if meter is not None else EstimateMeter()
    policies = {
        "fast": fast_policy or preset_policy("fast"),
        "accurate": accurate_policy or preset_policy("accurate"),
    }
    for service, policy in policies.items():
        unknown = sorted(set(policy.models) - set(SERVICES[service]))
        if unknown:
            raise ValueError(
                f"policy {policy.policy!r} of service {service} names models it does not serve: "
                f"{', '.join(unknown)} (it serves {', '.join(SERVICES[service])})"
            )
    started = time.perf_counter()
    camera = Camera(scenario)
    count = len(camera)
    trace_ids = [f"{seed % 2**32:08x}{index + 1:024x}" for index in range(count)]
    with meter.measure() as measurement:
        t0 = time.perf_counter()
        frames: list[Frame] = [camera.frame(i, trace_ids[i]) for i in range(count)]
        camera_seconds = (time.perf_counter() - t0) / count
    reading = measurement.reading
    camera_j = (reading.joules if reading is not None else 0.0) / count
    images = np.stack([frame.image for frame in frames])
    luminance = images.reshape(count, -1).mean(axis=1).tolist()
    labels = [frame.label for frame in frames]

    with tempfile.TemporaryDirectory(prefix="harmonia-pipeline-") as scratch:
        folder = keep_registries or Path(scratch)
        results: dict[str, ServiceReplay] = {}
        answers: dict[str, list[Answer]] = {}
        rows: list[dict[str, Any]] = []
        classify_ts: dict[str, list[float]] = {}
        energies: dict[str, np.ndarray] = {}
        for service, policy in policies.items():
            result, given, service_rows, ends, energy = _replay_service(
                service,
                policy,
                registry.fork(folder / f"pipeline-{service}"),
                meter,
                seed,
                frames,
                images,
                luminance,
                camera_seconds,
                progress,
            )
            results[service], answers[service] = result, given
            rows.extend(service_rows)
            classify_ts[service], energies[service] = ends, energy

    # the aggregate: one vote per frame over both services' answers
    with meter.measure() as measurement:
        t0 = time.perf_counter()
        verdicts = [vote([answers[s][i] for s in policies]) for i in range(count)]
        vote_seconds = (time.perf_counter() - t0) / count
    reading = measurement.reading
    vote_j = (reading.joules if reading is not None else 0.0) / count
    correct = np.asarray([best.label == labels[i] for i, (best, _) in enumerate(verdicts)])
    for i, (best, agree) in enumerate(verdicts):
        ts = i * FRAME_SECONDS
        rows.append(
            _row(CAMERA_SERVICE, CAMERA, CAMERA_MODEL, None, ts + camera_seconds,
                 camera_seconds, camera_j, meter.source, trace_ids[i],
                 drift_value=luminance[i])
        )  # fmt: skip
        end = max(classify_ts[s][i] for s in policies) + vote_seconds
        rows.append(
            _row(VOTE_SERVICE, AGGREGATE, VOTE_MODEL, None, end, vote_seconds, vote_j,
                 meter.source, trace_ids[i], prediction=float(best.label),
                 target=float(labels[i]),
                 metrics={"confidence": best.confidence, "agree": float(agree)})
        )  # fmt: skip
    per_frame = camera_j + vote_j + sum(energies[s] for s in policies)
    training = sum(result.training_joules for result in results.values())
    return PipelineReplay(
        frames=count,
        accuracy=float(correct.mean()),
        services=results,
        energy_per_stage={
            CAMERA: camera_j,
            CLASSIFY: float(sum(energies[s].mean() for s in policies) + training / count),
            AGGREGATE: vote_j,
        },
        energy_per_frame=with_training(np.asarray(per_frame, dtype=float), training),
        correct=correct,
        chosen=[best.service for best, _ in verdicts],
        summary=summarize_pipeline(application(), rows),
        regions=scenario.regions(),
        seconds=time.perf_counter() - started,
    )


def _replay_service(
    service: str,
    policy: Policy,
    registry: ModelRegistry,
    meter: EnergyMeter,
    seed: int,
    frames: list[Frame],
    images: np.ndarray,
    luminance: list[float],
    camera_seconds: float,
    progress: Progress | None,
) -> tuple[ServiceReplay, list[Answer], list[dict[str, Any]], list[float], np.ndarray]:
    """One classify service over the frames, its engine deciding at its policy's cadence:
    what it did, its answers, its samples, when each ended (event time), joules per frame."""
    for kind in SERVICES[service]:  # every replay starts from version 1
        registry.set_alias(kind, CURRENT, 1, reason="pipeline replay starts from v1")
    system = VisionSystem(registry, meter, seed=seed, models=policy.models)
    per_inference = system.energy_per_inference()
    engine = build_engine(policy, seed=seed)
    knowledge = system.knowledge(policy.models, policy.start_model)
    result = ServiceReplay(service, policy.policy)
    count = len(frames)
    answers: list[Answer] = []
    rows: list[dict[str, Any]] = []
    ends: list[float] = []
    energy = np.empty(count)
    latencies = np.empty(count)
    correct = 0
    begun = engine.begin(knowledge, camera_seconds)
    if begun is not None:
        apply_action(begun, system, knowledge, images[:0])
        result.actions.append(ActionRecord.of(0, begun))
    for i, frame in enumerate(frames):
        active = system.active
        version = system.serving_version
        t0 = time.perf_counter()
        label, confidence = system.predict(frame.image)
        latencies[i] = time.perf_counter() - t0
        energy[i] = per_inference[active]
        correct += label == frame.label
        result.models.append(active)
        result.versions.append(version)
        ts = i * FRAME_SECONDS + camera_seconds + latencies[i]
        ends.append(ts)
        trace_id = frame.trace_id
        row = _row(
            service,
            CLASSIFY,
            active,
            version,
            ts,
            latencies[i],
            energy[i],
            meter.source,
            trace_id,
            prediction=float(label),
            target=float(frame.label),
            drift_value=luminance[i],
            metrics={"confidence": confidence, "correct": float(label == frame.label)},
        )
        rows.append(row)
        answers.append(Answer(i, service, label, confidence, frame.label, frame.traceparent))
        knowledge.observe(TelemetrySample.trusted(row))
        for action in engine.step(knowledge, ts):
            if action.kind is ActionKind.NONE:
                continue
            result.training_joules += apply_action(action, system, knowledge, images[: i + 1])
            result.actions.append(ActionRecord.of(i, action))
        if progress and (i % 500 == 0 or i == count - 1):
            progress(service, i + 1, count)
    result.accuracy = correct / count
    result.energy_j_per_inference = float(energy.mean() + result.training_joules / count)
    result.inference_ms = float(latencies.mean() * 1e3)
    return result, answers, rows, ends, energy
