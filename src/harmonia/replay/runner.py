"""Run approaches over a recorded stream in event time, the way an online service runs.

Every sample is predicted by the model in service, one call at a time, exactly as a live
service would; the engine steps at the policy's cadence on the same telemetry a live probe
would send; actions are applied in-process (a retrain really trains, a reuse really loads an
archived version). Each approach works on its own fork of the model registry, so all start
from the same version 1 and none sees another's retrained versions.

Energy per inference is each model's measured figure (see `TrafficSystem`), plus the
measured energy of every retrain spread over the stream, as HarmonE's evaluation counts it.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from harmonia.core.actions import Action, ActionKind
from harmonia.core.knowledge import Knowledge
from harmonia.core.monitor import r2_and_mae
from harmonia.core.telemetry import TelemetrySample
from harmonia.energy import EnergyMeter
from harmonia.policies import build_engine
from harmonia.registry import CURRENT, ModelRegistry
from harmonia.replay.approaches import MODELS, ORACLE, WINDOW, approach_policy
from harmonia.replay.oracle import frontier, mean_window_score, oracle
from harmonia.replay.results import ActionRecord, ApproachResult, Timeline
from harmonia.systems.traffic.data import LOOKBACK, lag_windows
from harmonia.systems.traffic.models import Menu
from harmonia.systems.traffic.system import TrafficSystem

#: event time between two samples: PeMS aggregates flow over 5 minutes
SAMPLE_SECONDS = 300.0
Progress = Callable[[str, int, int], None]


def _apply(
    action: Action,
    system: TrafficSystem,
    knowledge: Knowledge,
    observed: np.ndarray,
) -> float:
    """Carry out one action as the traffic system's effector; return the energy it cost."""
    model = action.model or knowledge.active_model
    if action.kind is ActionKind.SWITCH_MODEL:
        system.switch(model)
        knowledge.activate(model)
    elif action.kind is ActionKind.REUSE_VERSION and action.version is not None:
        system.reuse(model, action.version, reason=action.reason)
        knowledge.activate(model, action.version)
    elif action.kind is ActionKind.RETRAIN:
        retrained = system.retrain(model, observed, reason=action.reason)
        knowledge.add_version(retrained.version.info())
        knowledge.activate(model, retrained.version.version)
        return retrained.joules
    return 0.0


def run_approach(
    name: str,
    series: np.ndarray,
    base: ModelRegistry,
    menu: Menu,
    meter: EnergyMeter,
    *,
    seed: int = 0,
    progress: Progress | None = None,
    keep_registry: Path | None = None,
) -> ApproachResult:
    """Replay one approach over ``series`` (raw flow values) and measure what it achieves.

    The approach's registry (with every version it trained) is a temporary fork, or is kept
    at ``keep_registry`` for inspection.
    """
    policy = approach_policy(name)
    inputs, targets = lag_windows(series)
    rows = inputs.tolist()
    count = len(targets)
    with tempfile.TemporaryDirectory(prefix=f"harmonia-{name}-") as scratch:
        registry = base.fork(keep_registry or Path(scratch) / "registry")
        for kind in MODELS:  # every approach starts from version 1, whatever ran live since
            registry.set_alias(kind, CURRENT, 1, reason=f"replay of {name} starts from v1")
        system = TrafficSystem(registry, menu, meter, seed=seed, models=MODELS)
        energy = system.energy_per_inference()
        engine = build_engine(policy, seed=seed)
        knowledge = system.knowledge(policy.models, policy.start_model)
        predictions = np.empty(count)
        latency = np.empty(count)
        energies = np.empty(count)
        timeline = Timeline()
        training_joules = 0.0
        started = time.perf_counter()
        for i, (row, target) in enumerate(zip(rows, targets.tolist(), strict=True)):
            active = system.active
            t0 = time.perf_counter()
            prediction = system.predict(row)
            latency[i] = time.perf_counter() - t0
            predictions[i] = prediction
            energies[i] = energy[active]
            version = knowledge.active_version or 1
            timeline.models.append(active)
            timeline.versions.append(version)
            ts = (i + LOOKBACK) * SAMPLE_SECONDS
            # Every field comes from this loop, typed above: no need to validate again.
            knowledge.observe(
                TelemetrySample.trusted(
                    {
                        "app": "traffic",
                        "service": "forecast",
                        "instance": "replay",
                        "model": active,
                        "model_version": version,
                        "ts": ts,
                        "latency_ms": latency[i] * 1e3,
                        "energy_j": energies[i],
                        "energy_source": meter.source,
                        "prediction": prediction,
                        "target": target,
                        "drift_value": target,
                        "metrics": {},
                        "input_summary": None,
                    }
                )
            )
            for action in engine.step(knowledge, ts):
                if action.kind is ActionKind.NONE:
                    continue
                observed = series[: i + LOOKBACK + 1]
                training_joules += _apply(action, system, knowledge, observed)
                timeline.actions.append(
                    ActionRecord(
                        i,
                        action.kind.value,
                        action.model,
                        action.version,
                        action.reason,
                        action.trigger,
                    )
                )
            if progress and (i % 500 == 0 or i == count - 1):
                progress(name, i + 1, count)
        seconds = time.perf_counter() - started
    r2, mae = r2_and_mae(predictions, targets)
    kinds = [a.kind for a in timeline.actions]
    return ApproachResult(
        approach=name,
        energy_j_per_inference=float(energies.mean() + training_joules / count),
        r2=r2,
        mae=mae,
        inference_ms=float(latency.mean() * 1e3),
        switches=kinds.count(ActionKind.SWITCH_MODEL.value),
        retrains=kinds.count(ActionKind.RETRAIN.value),
        reuses=kinds.count(ActionKind.REUSE_VERSION.value),
        energy_source=meter.source,
        objective=mean_window_score(predictions, targets, energies, policy.objective, WINDOW),
        seconds=seconds,
        timeline=timeline,
    )


def run_oracle(
    series: np.ndarray, base: ModelRegistry, menu: Menu, meter: EnergyMeter
) -> tuple[ApproachResult, list[tuple[float, float]]]:
    """The oracle over version 1 of every model, and its energy–accuracy frontier.

    Predictions are made one call at a time by the same code that serves them, so they are
    exactly the single-model baselines' predictions.
    """
    started = time.perf_counter()
    system = TrafficSystem(base, menu, meter, models=MODELS)
    inputs, targets = lag_windows(series)
    rows = inputs.tolist()
    predictions = {}
    for kind in MODELS:
        predict = system.model(kind, 1).predict
        predictions[kind] = np.asarray([predict(row) for row in rows])
    energy = system.energy_per_inference()
    objective = approach_policy("harmonia").objective
    choice = oracle(predictions, targets, energy, objective, WINDOW)
    latency = {kind: base.get(kind, 1).metrics.get("latency_ms", float("nan")) for kind in MODELS}
    switches = [
        ActionRecord(
            index=k * WINDOW - 1,
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
        r2=choice.r2,
        mae=choice.mae,
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
    return result, frontier(predictions, targets, energy, objective, WINDOW)
