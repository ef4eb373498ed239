"""The traffic system run live against a Harmonia server, as an ordinary sdk user.

It serves the stream one observation at a time (optionally paced to ``rate`` per second),
reports each prediction through a `harmonia.sdk.Probe`, and lets an `Effector` carry out
the actions the server sends back: switch, retrain on recent observations, reuse a version.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

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
from harmonia.systems.traffic.data import LOOKBACK, TEST, TRAIN, lag_windows, load_flow, shipped
from harmonia.systems.traffic.models import MENUS, MODEL_KINDS, Menu
from harmonia.systems.traffic.system import TrafficSystem


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
    loop: bool = False,
    limit: int | None = None,
) -> LiveRun:
    """Serve ``series`` live, reporting to ``server``: once, or round and round with
    ``loop`` (until stopped); at most ``limit`` observations; stop early when ``stop(run)``
    says so."""
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
    probe.effector = system_effector(
        system, lambda: played(series, run.served, LOOKBACK), run, partial(describe_version, probe)
    )
    describe_registry(probe, registry, MODEL_KINDS)
    with probe:
        started = time.perf_counter()
        pairs = list(zip(rows, truth, strict=True))
        for i, (row, target) in enumerate(looped(pairs, loop=loop, limit=limit)):
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
    """`run_live` over a flow CSV (default: the shipped test stream): the system's
    `harmonia.systems.LiveRunner`, what ``harmonia run traffic`` calls."""
    if menu not in MENUS:
        raise ValueError(f"unknown menu {menu!r}; choose {' or '.join(MENUS)}")
    series = load_flow(data or shipped(TEST))
    return run_live(
        server,
        app,
        token,
        series,
        data_dir=data_dir,
        menu=menu,
        rate=rate,
        loop=loop,
        limit=limit,
    )
