"""Run approaches over a recorded stream in event time, the way an online service runs.

Every sample is predicted by the model in service, one call at a time, exactly as a live
service would; the engine steps at the policy's cadence on the same telemetry a live probe
would send; actions are applied in-process (a retrain really trains, a reuse really loads an
archived version). Each approach works on its own fork of the model registry, so all start
from the same version 1 and none sees another's retrained versions.

The runner knows no system: a `ReplaySpec` (``harmonia.replay.systems``) says how to open
one, serve an input and judge predictions; the traffic and vision systems are its two
implementations.

Energy per inference is each model's measured figure (see the systems), plus the measured
energy of every retrain spread over the stream, as HarmonE's evaluation counts it.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from harmonia.core.actions import Action, ActionKind
from harmonia.core.knowledge import Knowledge
from harmonia.core.telemetry import TelemetrySample
from harmonia.energy import EnergyMeter
from harmonia.policies import build_engine
from harmonia.registry import CURRENT, ModelRegistry
from harmonia.replay.approaches import ORACLE, approach_policy
from harmonia.replay.oracle import frontier, mean_window_score, oracle, with_training
from harmonia.replay.results import ActionRecord, ApproachResult, Timeline
from harmonia.replay.systems import ReplaySpec, Stream, spec_for
from harmonia.systems.serving import Adaptable

#: event time between two traffic samples (kept for callers of the traffic-only runner)
SAMPLE_SECONDS = 300.0
Progress = Callable[[str, int, int], None]


def apply_action(action: Action, system: Adaptable, knowledge: Knowledge, observed: Any) -> float:
    """Carry out one action on the system and record it in the knowledge (a retrain learns
    from ``observed``); return the energy it cost."""
    model = action.model or knowledge.active_model
    if action.kind is ActionKind.SWITCH_MODEL:
        system.switch(model)
        knowledge.activate(model)
    elif action.kind is ActionKind.REUSE_VERSION and action.version is not None:
        system.reuse(model, action.version, reason=action.reason)
        knowledge.activate(model, action.version)
    elif action.kind is ActionKind.RETRAIN:
        retrained = system.retrain(model, observed, reason=action.reason)
        knowledge.add_version(retrained.version.model_version)
        knowledge.activate(model, retrained.version.version)
        return retrained.joules
    return 0.0


def _as_stream(spec: ReplaySpec, data: Any) -> Stream:
    return data if isinstance(data, Stream) else spec.stream(data)


def run_approach(
    name: str,
    data: Any,
    base: ModelRegistry,
    menu: str,
    meter: EnergyMeter,
    *,
    system: str = "traffic",
    seed: int = 0,
    progress: Progress | None = None,
    keep_registry: Path | None = None,
) -> ApproachResult:
    """Replay one approach over ``data`` (a `Stream`, or what the system's spec turns into
    one: raw flow values for traffic, a scenario for vision) and measure what it achieves.

    The approach's registry (with every version it trained) is a temporary fork, or is kept
    at ``keep_registry`` for inspection.
    """
    spec = spec_for(system)
    policy = approach_policy(name, system)
    quality = spec.quality(policy.objective.quality)
    stream = _as_stream(spec, data)
    count = len(stream)
    targets = stream.targets
    with tempfile.TemporaryDirectory(prefix=f"harmonia-{name}-") as scratch:
        registry = base.fork(keep_registry or Path(scratch) / "registry")
        for kind in spec.settings.models:  # every approach starts from version 1
            registry.set_alias(kind, CURRENT, 1, reason=f"replay of {name} starts from v1")
        engine = build_engine(policy, seed=seed)
        # a stress test costs more than the fine-tune it follows: measured only where it is read
        reads = bool(getattr(engine.strategy, "reads_stress_test", False))
        managed = spec.open(registry, menu, meter, seed, stress_test=reads)
        serve = spec.serve(managed)
        energy = managed.energy_per_inference()
        knowledge = managed.knowledge(policy.models, policy.start_model)
        begun = engine.begin(knowledge, stream.first_ts)
        predictions = np.empty(count)
        confidences = np.zeros(count)
        latency = np.empty(count)
        energies = np.empty(count)
        timeline = Timeline()
        training_joules = 0.0
        if begun is not None:
            apply_action(begun, managed, knowledge, stream.observed(0))
            timeline.actions.append(ActionRecord.of(0, begun))
        drift_values = stream.drift_values.tolist()
        features = {name: column.tolist() for name, column in stream.features.items()}
        started = time.perf_counter()
        for i, (x, target) in enumerate(zip(stream.inputs, targets.tolist(), strict=True)):
            active = managed.active
            t0 = time.perf_counter()
            prediction, metrics = serve(x)
            latency[i] = time.perf_counter() - t0
            predictions[i] = prediction
            if metrics:
                confidences[i] = metrics.get("confidence", 0.0)
            if features:
                metrics = {**metrics, **{name: column[i] for name, column in features.items()}}
            energies[i] = energy[active]
            version = knowledge.active_version or 1
            timeline.models.append(active)
            timeline.versions.append(version)
            ts = stream.first_ts + i * stream.sample_seconds
            # Every field comes from this loop, typed above: no need to validate again.
            knowledge.observe(
                TelemetrySample.trusted(
                    {
                        "app": spec.app,
                        "stage": None,
                        "service": spec.service,
                        "instance": "replay",
                        "trace_id": None,
                        "model": active,
                        "model_version": version,
                        "ts": ts,
                        "latency_ms": latency[i] * 1e3,
                        "energy_j": energies[i],
                        "energy_source": meter.source,
                        "prediction": prediction,
                        "target": target,
                        "drift_value": drift_values[i],
                        "metrics": metrics,
                        "input_summary": None,
                    }
                )
            )
            for action in engine.step(knowledge, ts):
                if action.kind is ActionKind.NONE:
                    continue
                training_joules += apply_action(action, managed, knowledge, stream.observed(i))
                timeline.actions.append(ActionRecord.of(i, action))
            if progress and (i % 500 == 0 or i == count - 1):
                progress(name, i + 1, count)
        seconds = time.perf_counter() - started
    judged = _judged(spec, predictions, confidences)
    kinds = [a.kind for a in timeline.actions]
    window = spec.settings.window
    charged = with_training(energies, training_joules)
    return ApproachResult(
        approach=name,
        energy_j_per_inference=float(charged.mean()),
        metrics=quality.overall(judged, targets),
        inference_ms=float(latency.mean() * 1e3),
        switches=kinds.count(ActionKind.SWITCH_MODEL.value),
        retrains=kinds.count(ActionKind.RETRAIN.value),
        reuses=kinds.count(ActionKind.REUSE_VERSION.value),
        energy_source=meter.source,
        objective=mean_window_score(judged, targets, charged, policy.objective, window, quality),
        seconds=seconds,
        timeline=timeline,
    )


def _judged(spec: ReplaySpec, predictions: np.ndarray, confidences: np.ndarray) -> np.ndarray:
    """Predictions as the system's `Quality` reads them: values, or (class, confidence) rows."""
    if spec.settings.objective.get("quality", "r2") == "r2":
        return predictions
    return np.column_stack([predictions, confidences])


def run_oracle(
    data: Any,
    base: ModelRegistry,
    menu: str,
    meter: EnergyMeter,
    *,
    system: str = "traffic",
) -> tuple[ApproachResult, list[tuple[float, float]]]:
    """The oracle over version 1 of every model, and its energy–accuracy frontier.

    Predictions are made one call at a time by the same code that serves them, so they are
    exactly the single-model baselines' predictions.
    """
    started = time.perf_counter()
    spec = spec_for(system)
    models = spec.settings.models
    window = spec.settings.window
    stream = _as_stream(spec, data)
    managed = spec.open(base, menu, meter, 0)
    targets = stream.targets
    predictions = {kind: spec.predictions(managed, kind, stream) for kind in models}
    energy = managed.energy_per_inference()
    objective = approach_policy("harmonia", system).objective
    quality = spec.quality(objective.quality)
    choice = oracle(predictions, targets, energy, objective, window, quality)
    latency = {kind: base.get(kind, 1).metrics.get("latency_ms", float("nan")) for kind in models}
    switches = [
        ActionRecord(
            index=k * window - 1,
            kind=ActionKind.SWITCH_MODEL.value,
            model=after,
            version=1,
            reason=f"hindsight: {after} scores best on the next window",
            trigger="oracle",
        )
        for k, (before, after) in enumerate(
            zip(choice.per_window, choice.per_window[1:], strict=False), start=1
        )
        if before != after
    ]
    result = ApproachResult(
        approach=ORACLE,
        energy_j_per_inference=choice.energy_j_per_inference,
        metrics=choice.metrics,
        inference_ms=float(np.mean([latency[m] for m in choice.per_sample])),
        switches=len(switches),
        retrains=0,
        reuses=0,
        energy_source=meter.source,
        objective=choice.objective,
        seconds=time.perf_counter() - started,
        timeline=Timeline(
            models=choice.per_sample, versions=[1] * len(choice.per_sample), actions=switches
        ),
    )
    return result, frontier(predictions, targets, energy, objective, window, quality=quality)
