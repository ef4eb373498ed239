"""The replay lab's front door: prepare the models, run the approaches in parallel, write
results and plots. The CLI and the benchmark call `run_lab`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harmonia.energy import EnergyMeter, auto_meter
from harmonia.registry import ModelRegistry
from harmonia.replay.approaches import MODELS, ORACLE, WINDOW
from harmonia.replay.plots import write_plots
from harmonia.replay.results import ApproachResult, ReplayResult
from harmonia.replay.runner import run_approach, run_oracle
from harmonia.systems.traffic.data import (
    LOOKBACK,
    TEST,
    TEST_NO_DRIFT,
    TRAIN,
    drift_regions,
    load_flow,
    shipped,
)
from harmonia.systems.traffic.models import Menu
from harmonia.systems.traffic.system import TrafficSystem

#: called with (what, done, total) as work completes
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class LabRun:
    """A finished lab run: the result and the files written."""

    result: ReplayResult
    files: list[Path]


def registry_for(data_dir: Path, menu: Menu) -> ModelRegistry:
    """The registry of one menu's traffic models, under the data directory."""
    return ModelRegistry(data_dir / "registry" / f"traffic-{menu}")


def _quiet_torch() -> None:
    """One intra-op thread: the same arithmetic every run (determinism), and per-inference
    energy that measures the model, not thread hand-offs."""
    import torch

    torch.set_num_threads(1)


def _worker(name: str, series: np.ndarray, root: str, menu: Menu, seed: int) -> ApproachResult:
    _quiet_torch()
    meter, _ = auto_meter()
    return run_approach(name, series, ModelRegistry(root), menu, meter, seed=seed)


def prepare(
    data_dir: Path, menu: Menu, meter: EnergyMeter, progress: Callable[[str], None] | None = None
) -> ModelRegistry:
    """The menu's registry, with version 1 of every model trained on first use."""
    _quiet_torch()
    registry = registry_for(data_dir, menu)
    system = TrafficSystem(registry, menu, meter, models=MODELS)
    system.ensure_trained(load_flow(shipped(TRAIN)), progress)
    return registry


def run_lab(
    approaches: list[str],
    *,
    menu: Menu = "harmonia",
    data: Path | None = None,
    out: Path,
    seed: int = 0,
    data_dir: Path = Path(".harmonia"),
    workers: int | None = None,
    progress: Progress | None = None,
    notes: Callable[[str], None] | None = None,
) -> LabRun:
    """Replay ``approaches`` on ``data`` (default: the shipped drifted test stream)."""
    series_path = data or shipped(TEST)
    series = load_flow(series_path)
    meter, skipped = auto_meter()
    for note in skipped:
        if notes:
            notes(f"energy: skipped {note}")
    registry = prepare(data_dir, menu, meter, notes)
    names = [n for n in approaches if n != ORACLE]
    workers = max(1, min(workers or os.cpu_count() or 1, len(names) or 1))
    total = len(names) + 1
    done = 0
    results: dict[str, ApproachResult] = {}
    if workers == 1:
        for name in names:
            results[name] = run_approach(name, series, registry, menu, meter, seed=seed)
            done += 1
            if progress:
                progress(name, done, total)
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = {
                pool.submit(_worker, name, series, str(registry.root), menu, seed): name
                for name in names
            }
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                done += 1
                if progress:
                    progress(futures[future], done, total)
    oracle_result, frontier = run_oracle(series, registry, menu, meter)
    if progress:
        progress(ORACLE, total, total)
    ordered = [results[n] for n in names]
    if ORACLE in approaches:
        ordered.append(oracle_result)
    regions: list[tuple[int, int]] = []
    if data is None:
        clean = load_flow(shipped(TEST_NO_DRIFT))
        regions = [(max(0, a - LOOKBACK), b - LOOKBACK) for a, b in drift_regions(series, clean)]
    result = ReplayResult(
        system="traffic",
        menu=menu,
        seed=seed,
        data=str(series_path),
        samples=len(series) - LOOKBACK,
        models=MODELS,
        window=WINDOW,
        approaches=ordered,
        frontier=frontier,
        drift_regions=regions,
        energy_per_model=TrafficSystem(registry, menu, meter, models=MODELS).energy_per_inference(),
    )
    files = result.write(out) + write_plots(result, out)
    return LabRun(result, files)
