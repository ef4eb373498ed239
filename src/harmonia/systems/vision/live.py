"""The vision system run live against a Harmonia server, as an ordinary sdk user.

It classifies the scenario's images one at a time (optionally paced to ``rate`` per second),
reports each through a `harmonia.sdk.Probe` (class, confidence, whether it was correct, the
image's mean luminance and sharpness), and lets an `Effector` carry out the server's
actions: switch, retrain for the drift in the recent images, reuse a version.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from harmonia.energy import auto_meter
from harmonia.registry import ModelRegistry
from harmonia.sdk import HTTPTransport, Probe
from harmonia.systems.live import (
    LiveRun,
    describe_registry,
    describe_version,
    looped,
    played,
    system_effector,
)
from harmonia.systems.vision.data import input_features, mean_luminance
from harmonia.systems.vision.models import MODEL_KINDS
from harmonia.systems.vision.scenario import Scenario, load_scenario
from harmonia.systems.vision.system import VisionSystem


def run_live(
    server: str,
    app: str,
    token: str,
    scenario: Scenario,
    *,
    data_dir: Path,
    rate: float | None = None,
    start_model: str = "large",
    instance: str = "vision-1",
    labels: bool = True,
    stop: Callable[[LiveRun], bool] | None = None,
    loop: bool = False,
    limit: int | None = None,
) -> LiveRun:
    """Serve the scenario's images live, reporting to ``server``: once, or round and round
    with ``loop``; at most ``limit`` images; ``labels`` sends the true class with each (as a
    labelled replay would); stop early when ``stop(run)`` says so."""
    meter, _ = auto_meter()
    registry = ModelRegistry(data_dir / "registry" / "vision")
    system = VisionSystem(registry, meter, models=MODEL_KINDS)
    system.ensure_trained()
    system.switch(start_model)
    run = LiveRun()
    images, truth = scenario.stream()
    luminance = mean_luminance(images).tolist()
    features = {name: column.tolist() for name, column in input_features(images).items()}
    transport = HTTPTransport(server, token)
    probe = Probe(app, transport, instance=instance, service="classify")
    probe.effector = system_effector(
        system,
        lambda: played(images, run.served),
        run,
        partial(describe_version, probe),
        lambda done: f"for {done.diagnosis.condition} in {done.seconds:.2f} s",
    )
    describe_registry(probe, registry, MODEL_KINDS)
    with probe:
        started = time.perf_counter()
        for n, i in enumerate(looped(range(len(images)), loop=loop, limit=limit)):
            with probe.measure(system.active, system.serving_version) as sample:
                label, confidence = system.predict(images[i])
                sample.prediction = float(label)
                sample.drift_value = luminance[i]
                sample.metrics["confidence"] = confidence
                for name, column in features.items():
                    sample.metrics[name] = column[i]
                if labels:
                    sample.target = float(truth[i])
                    sample.metrics["correct"] = float(label == truth[i])
            run.served = n + 1
            if stop is not None and stop(run):
                break
            if rate:
                delay = started + run.served / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
    transport.close()
    return run


def run(
    server: str,
    app: str,
    token: str,
    *,
    data: Path | None,
    data_dir: Path,
    menu: str,
    rate: float | None,
    loop: bool = False,
    limit: int | None = None,
) -> LiveRun:
    """`run_live` over a scenario file (default: the shipped one): the system's
    `harmonia.systems.LiveRunner`, what ``harmonia run vision`` calls. It has one menu."""
    scenario = load_scenario(data)
    return run_live(
        server, app, token, scenario, data_dir=data_dir, rate=rate, loop=loop, limit=limit
    )
