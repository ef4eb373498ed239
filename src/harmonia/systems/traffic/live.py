"""The traffic system run live against a Harmonia server, as an ordinary sdk user.

It serves the stream one observation at a time (optionally paced to ``rate`` per second),
reports each prediction through a `harmonia.sdk.Probe`, and lets an `Effector` carry out
the actions the server sends back: switch, retrain on recent observations, reuse a version.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from harmonia.energy import auto_meter
from harmonia.registry import ModelRegistry, ModelVersion
from harmonia.sdk import ActionMessage, Effector, HTTPTransport, Probe
from harmonia.systems.describe import describe_registry, describe_version
from harmonia.systems.traffic.data import LOOKBACK, TRAIN, lag_windows, load_flow, shipped
from harmonia.systems.traffic.models import MODEL_KINDS, Menu
from harmonia.systems.traffic.system import TrafficSystem


@dataclass
class LiveRun:
    """What a live run did: samples served and the actions carried out."""

    served: int = 0
    applied: list[str] = field(default_factory=list)


def traffic_effector(
    system: TrafficSystem,
    observed: Callable[[], np.ndarray],
    run: LiveRun,
    describe: Callable[[ModelVersion], None] | None = None,
) -> Effector:
    """Handlers that carry out the server's actions on ``system``; a retrained version is
    passed to ``describe`` (to tell the server about it)."""
    effector = Effector()

    def switch(action: ActionMessage) -> str:
        system.switch(action.model or system.active)
        run.applied.append(f"switch_model {system.active}")
        return f"serving {system.active}"

    def retrain(action: ActionMessage) -> str:
        done = system.retrain(action.model or system.active, observed(), reason=action.reason)
        if describe is not None:
            describe(done.version)
        run.applied.append(f"retrain {done.version.model} v{done.version.version}")
        return f"trained {done.version.model} v{done.version.version} in {done.seconds:.2f} s"

    def reuse(action: ActionMessage) -> str:
        if action.model is None or action.version is None:
            raise ValueError("reuse_version needs a model and a version")
        system.reuse(action.model, action.version, reason=action.reason)
        run.applied.append(f"reuse_version {action.model} v{action.version}")
        return f"serving {action.model} v{action.version}"

    effector.on("switch_model", switch)
    effector.on("retrain", retrain)
    effector.on("reuse_version", reuse)
    return effector


def run_live(
    server: str,
    app: str,
    token: str,
    series: np.ndarray,
    *,
    data_dir: Path,
    menu: Menu = "harmonia",
    rate: float | None = None,
    start_model: str = "lstm",
    instance: str = "traffic-1",
    stop: Callable[[LiveRun], bool] | None = None,
) -> LiveRun:
    """Serve ``series`` live, reporting to ``server``; stop early when ``stop(run)`` says so."""
    meter, _ = auto_meter()
    registry = ModelRegistry(data_dir / "registry" / f"traffic-{menu}")
    system = TrafficSystem(registry, menu, meter, models=MODEL_KINDS)
    system.ensure_trained(load_flow(shipped(TRAIN)))
    system.switch(start_model)
    run = LiveRun()
    inputs, targets = lag_windows(series)
    rows, truth = inputs.tolist(), targets.tolist()
    transport = HTTPTransport(server, token)
    probe = Probe(app, transport, instance=instance, service="forecast")
    probe.effector = traffic_effector(
        system, lambda: series[: run.served + LOOKBACK], run, partial(describe_version, probe)
    )
    describe_registry(probe, registry, MODEL_KINDS)
    with probe:
        started = time.perf_counter()
        for i, (row, target) in enumerate(zip(rows, truth, strict=True)):
            with probe.measure(system.active, system.serving_version) as sample:
                sample.prediction = system.predict(row)
                # The next observation is the ground truth; in this replayed stream it is known.
                sample.target = target
                sample.drift_value = target
            run.served = i + 1
            if stop is not None and stop(run):
                break
            if rate:
                delay = started + run.served / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
    transport.close()
    return run
