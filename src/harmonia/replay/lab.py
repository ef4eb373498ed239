"""The replay lab's front door: prepare the models, run the approaches in parallel, write
results and plots. The CLI and the benchmarks call `run_lab`, for any reference system.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harmonia.energy import EnergyMeter, auto_meter
from harmonia.registry import ModelRegistry
from harmonia.replay.approaches import ORACLE
from harmonia.replay.plots import write_plots
from harmonia.replay.results import ApproachResult, ReplayResult
from harmonia.replay.systems import spec_for

#: called with (what, done, total) as work completes
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class LabRun:
    """A finished lab run: the result and the files written."""

    result: ReplayResult
    files: list[Path]


def registry_for(data_dir: Path, menu: str, system: str = "traffic") -> ModelRegistry:
    """The registry of a system's models (of one menu, for traffic), under the data directory."""
    return spec_for(system).registry_for(data_dir, menu)


def _quiet_torch() -> None:
    """One intra-op thread: the same arithmetic every run (determinism), and per-inference
    energy that measures the model, not thread hand-offs."""
    import torch

    torch.set_num_threads(1)


def _worker(name: str, data: Any, root: str, menu: str, seed: int, system: str) -> ApproachResult:
    _quiet_torch()
    meter, _ = auto_meter()
    spec = spec_for(system)
    return spec.run_approach(name, data, ModelRegistry(root), menu, meter, seed=seed)


def prepare(
    data_dir: Path,
    menu: str,
    meter: EnergyMeter,
    progress: Callable[[str], None] | None = None,
    *,
    system: str = "traffic",
) -> ModelRegistry:
    """The system's registry, with version 1 of every model set up on first use."""
    _quiet_torch()
    spec = spec_for(system)
    registry = spec.registry_for(data_dir, menu)
    spec.prepare(registry, menu, meter, progress)
    return registry


def short_stream_warning(samples: int, window: int) -> str | None:
    """What to tell a user whose stream is shorter than one decision window: no window
    closes, so no approach decides anything, and the comparison would look like a tie for
    no visible reason. None when at least one window fits.

    >>> short_stream_warning(400, 200) is None
    True
    >>> print(short_stream_warning(120, 200))  # doctest: +ELLIPSIS
    warning: the stream has 120 samples, fewer than one decision window (200): ...
    """
    if samples >= window:
        return None
    return (
        f"warning: the stream has {samples} samples, fewer than one decision window "
        f"({window}): no window closes, so no approach can decide anything and each serves "
        f"its first model throughout; replay at least {window} samples"
    )


def run_lab(
    approaches: list[str],
    *,
    system: str = "traffic",
    menu: str = "harmonia",
    data: Any = None,
    out: Path,
    seed: int = 0,
    data_dir: Path = Path(".harmonia"),
    workers: int | None = None,
    progress: Progress | None = None,
    notes: Callable[[str], None] | None = None,
) -> LabRun:
    """Replay ``approaches`` on ``data``: for traffic a flow CSV (default: the shipped drifted
    test stream), for vision and the pipeline a scenario or scenario file (default: the
    shipped scenario). Each approach is the system's spec's `run_approach`: one engine over
    one service, or one per adapting service of a pipeline."""
    spec = spec_for(system)
    stream = spec.stream(data)
    short = short_stream_warning(len(stream), spec.settings.window)
    if short and notes:
        notes(short)
    meter, skipped = auto_meter()
    for note in skipped:
        if notes:
            notes(f"energy: skipped {note}")
    registry = prepare(data_dir, menu, meter, notes, system=system)
    names = [n for n in approaches if n != ORACLE]
    workers = max(1, min(workers or os.cpu_count() or 1, len(names) or 1))
    total = len(names) + (ORACLE in spec.settings.approaches)
    done = 0
    results: dict[str, ApproachResult] = {}
    if workers == 1:
        for name in names:
            results[name] = spec.run_approach(name, stream, registry, menu, meter, seed=seed)
            done += 1
            if progress:
                progress(name, done, total)
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = {
                pool.submit(_worker, name, stream, str(registry.root), menu, seed, system): name
                for name in names
            }
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                done += 1
                if progress:
                    progress(futures[future], done, total)
    ordered = [results[n] for n in names]
    frontier: list[tuple[float, float]] = []
    oracle = spec.run_oracle(stream, registry, menu, meter)
    if oracle is not None:
        oracle_result, frontier = oracle
        if progress:
            progress(ORACLE, total, total)
        if ORACLE in approaches:
            ordered.append(oracle_result)
    objective_quality = spec.settings.objective.get("quality", "r2")
    result = ReplayResult(
        system=system,
        menu=menu,
        seed=seed,
        data=stream.source,
        samples=len(stream),
        models=spec.settings.models,
        window=spec.settings.window,
        approaches=ordered,
        frontier=frontier,
        drift_regions=stream.regions,
        energy_per_model=spec.open(registry, menu, meter, seed).energy_per_inference(),
        quality_metric=spec.quality(objective_quality).metric,
        drift_conditions=stream.conditions,
    )
    files = result.write(out) + write_plots(result, out)
    return LabRun(result, files)
