"""Suites: every approach over many generated streams, and how they stand as a distribution.

``harmonia replay SYSTEM --suite N --seed S`` generates N streams
(`harmonia.replay.generators`), the k-th from seed ``S·10000 + k`` (so suites of different
seeds share no stream), replays every approach and the window oracle on each (one task per
stream and approach, submitted by `run_tasks` to the lab's local process pool or, with
``--cluster``, to a Dask cluster: `harmonia.replay.cluster`), and compares each approach with
the best fixed configuration and the oracle of its stream (`harmonia.replay.references`).

Outputs, under ``--out``: ``streams/<system>-<seed>/results.json|csv`` (each stream's replay,
as a single replay writes it), ``suite.json`` (the streams, every approach's standing per
stream, and the distribution: median and worst) and ``suite.csv`` (one row per stream and
approach).
"""

from __future__ import annotations

import csv
import json
import os
import statistics
from collections.abc import Callable
from concurrent.futures import (
    Executor,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    as_completed,
)
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harmonia.energy import EnergyMeter, auto_meter
from harmonia.registry import ModelRegistry
from harmonia.replay.approaches import ORACLE
from harmonia.replay.generators import GeneratedStream, generate, replay_stream
from harmonia.replay.lab import _quiet_torch, prepare
from harmonia.replay.references import Standing, compare
from harmonia.replay.results import ApproachResult, ReplayResult
from harmonia.replay.systems import spec_for

#: called with (what, done, total) as work completes
Progress = Callable[[str, int, int], None]
#: streams of one suite seed are numbered within this stride
SEED_STRIDE = 10_000


def stream_seed(suite_seed: int, index: int) -> int:
    """The generator seed of stream ``index`` of the suite with seed ``suite_seed``.

    >>> stream_seed(3, 7)
    30007
    """
    return suite_seed * SEED_STRIDE + index


@dataclass
class Distribution:
    """An approach over the suite's streams: medians, worst cases and counts."""

    approach: str
    streams: int
    median_objective: float
    worst_objective: float
    median_quality: float
    median_energy_j_per_inference: float
    median_regret_best_fixed: float
    worst_regret_best_fixed: float
    median_regret_oracle: float
    worst_regret_oracle: float
    median_relative_regret_oracle: float
    dominated: int
    dominated_share: float
    #: retrains on streams that do not drift at all
    retrains_without_drift: int


@dataclass
class SuiteResult:
    """A whole suite: per stream, the replay and each approach's standing; the distribution."""

    system: str
    menu: str
    seed: int
    samples: int
    streams: list[dict[str, Any]]
    #: per stream (by name): the best fixed configuration's approach name
    best_fixed: dict[str, str]
    #: per stream (by name), per approach
    standings: dict[str, dict[str, Standing]]
    distribution: dict[str, Distribution]
    seconds: float = 0.0
    replays: dict[str, ReplayResult] = field(default_factory=dict, repr=False)

    def write(self, out: Path) -> list[Path]:
        """suite.json, suite.csv, and each stream's results under ``streams/``."""
        out.mkdir(parents=True, exist_ok=True)
        files: list[Path] = []
        for name, replay in self.replays.items():
            files += replay.write(out / "streams" / name)
        document = {
            "system": self.system,
            "menu": self.menu,
            "seed": self.seed,
            "samples": self.samples,
            "seconds": self.seconds,
            "streams": self.streams,
            "best_fixed": self.best_fixed,
            "distribution": {k: asdict(v) for k, v in self.distribution.items()},
            "standings": {
                stream: {k: asdict(v) for k, v in rows.items()}
                for stream, rows in self.standings.items()
            },
        }
        json_path, csv_path = out / "suite.json", out / "suite.csv"
        json_path.write_text(json.dumps(document, indent=1) + "\n")
        columns = ["stream", "best_fixed", *Standing.__dataclass_fields__]
        with csv_path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            for stream, rows in self.standings.items():
                for standing in rows.values():
                    row = asdict(standing)
                    row["dominated_by"] = " ".join(standing.dominated_by)
                    writer.writerow(
                        {"stream": stream, "best_fixed": self.best_fixed[stream], **row}
                    )
        return [*files, json_path, csv_path]


def _median(values: list[float]) -> float:
    finite = [v for v in values if v == v]
    return float(statistics.median(finite)) if finite else float("nan")


def distribution(
    standings: dict[str, dict[str, Standing]], drifting: dict[str, bool]
) -> dict[str, Distribution]:
    """Each approach's medians and worst cases over the streams."""
    approaches = list(dict.fromkeys(a for rows in standings.values() for a in rows))
    summary: dict[str, Distribution] = {}
    for approach in approaches:
        rows = [(s, r[approach]) for s, r in standings.items() if approach in r]
        objectives = [r.objective for _, r in rows]
        best = [r.regret_best_fixed for _, r in rows]
        oracle = [r.regret_oracle for _, r in rows]
        dominated = sum(r.dominated for _, r in rows)
        summary[approach] = Distribution(
            approach=approach,
            streams=len(rows),
            median_objective=_median(objectives),
            worst_objective=min(objectives, default=float("nan")),
            median_quality=_median([r.quality for _, r in rows]),
            median_energy_j_per_inference=_median([r.energy_j_per_inference for _, r in rows]),
            median_regret_best_fixed=_median(best),
            worst_regret_best_fixed=max(best, default=float("nan")),
            median_regret_oracle=_median(oracle),
            worst_regret_oracle=max(oracle, default=float("nan")),
            median_relative_regret_oracle=_median([r.relative_regret_oracle for _, r in rows]),
            dominated=dominated,
            dominated_share=dominated / len(rows) if rows else float("nan"),
            retrains_without_drift=sum(r.retrains for s, r in rows if not drifting[s]),
        )
    return summary


def _approach_task(
    system: str, menu: str, root: str, seed: int, samples: int, name: str, replay_seed: int
) -> ApproachResult:
    _quiet_torch()
    meter, _ = auto_meter()
    stream = replay_stream(generate(system, seed, samples))
    spec = spec_for(system)
    return spec.run_approach(name, stream, ModelRegistry(root), menu, meter, seed=replay_seed)


def _oracle_task(system: str, menu: str, root: str, seed: int, samples: int) -> ApproachResult:
    _quiet_torch()
    meter, _ = auto_meter()
    stream = replay_stream(generate(system, seed, samples))
    found = spec_for(system).run_oracle(stream, ModelRegistry(root), menu, meter)
    if found is None:
        raise ValueError(f"{system} has no window oracle")
    return found[0]


def _run_task(approach: str, arguments: tuple[Any, ...]) -> ApproachResult:
    """One task of a suite, by the approach's name; module-level so any executor can
    pickle it by reference."""
    return _oracle_task(*arguments) if approach == ORACLE else _approach_task(*arguments)


#: a suite's tasks: (stream name, approach name, the task's arguments)
Task = tuple[str, str, tuple[Any, ...]]


def run_tasks(
    executor: Executor, tasks: list[Task], progress: Progress | None = None
) -> dict[tuple[str, str], ApproachResult]:
    """Each task's result by (stream, approach), from any `concurrent.futures.Executor`
    (a local process pool, a thread, a Dask cluster's executor): one submission loop for
    every place the suite runs, reporting ``progress`` as tasks finish, in this thread.

    On the first failure the tasks not yet started are cancelled and the error is raised.
    """
    futures: dict[Future[ApproachResult], tuple[str, str]] = {
        executor.submit(_run_task, approach, arguments): (stream, approach)
        for stream, approach, arguments in tasks
    }
    rows: dict[tuple[str, str], ApproachResult] = {}
    try:
        for done, future in enumerate(as_completed(futures), start=1):
            rows[futures[future]] = future.result()
            if progress:
                progress(" ".join(futures[future]), done, len(futures))
    except BaseException:
        for future in futures:
            future.cancel()
        raise
    return rows


def _executor(
    cluster: str | None,
    workers: int | None,
    tasks: int,
    data_dir: Path,
    notes: Callable[[str], None] | None,
) -> Executor:
    """Where a suite's ``tasks`` run: the Dask cluster at ``cluster``, whose workers must see
    ``data_dir``; else ``workers`` local processes (default: one per core), or, for one, a
    thread of this process, which spares a process start and the imports."""
    if cluster is not None:
        from harmonia.replay.cluster import connect

        data_dir.mkdir(parents=True, exist_ok=True)
        return connect(cluster, shared=[str(data_dir.resolve())], notes=notes)
    workers = max(1, min(workers or os.cpu_count() or 1, tasks or 1))
    return ThreadPoolExecutor(1) if workers == 1 else ProcessPoolExecutor(workers)


def run_suite(
    system: str,
    count: int,
    *,
    approaches: list[str] | None = None,
    seed: int = 0,
    menu: str = "harmonia",
    samples: int | None = None,
    data_dir: Path = Path(".harmonia"),
    workers: int | None = None,
    progress: Progress | None = None,
    notes: Callable[[str], None] | None = None,
    meter: EnergyMeter | None = None,
    cluster: str | None = None,
) -> SuiteResult:
    """Replay ``approaches`` (default: all of the system's) and the window oracle over
    ``count`` streams generated from ``seed``; compare them (see the module notes).

    The tasks run on ``workers`` local processes, or on the Dask scheduler at ``cluster``
    (`harmonia.replay.cluster.connect`; ``workers`` is then the cluster's business), with
    the same results: each task is a function of its arguments alone.
    """
    import time

    started = time.perf_counter()
    spec = spec_for(system)
    names = [n for n in (approaches or spec.settings.approaches) if n != ORACLE]
    if meter is None:
        meter, skipped = auto_meter()
        for note in skipped:
            if notes:
                notes(f"energy: skipped {note}")
    # a cluster first: a wrong address fails now, not after the models' first training
    pool = _executor(cluster, workers, count * (len(names) + 1), data_dir, notes)
    with pool:
        registry = prepare(data_dir, menu, meter, notes, system=system)
        generated: list[GeneratedStream] = [
            generate(system, stream_seed(seed, k), samples) for k in range(count)
        ]
        length = generated[0].samples if generated else samples or 0
        tasks: list[Task] = []
        root = str(Path(registry.root).resolve())  # workers elsewhere start in other folders
        for stream in generated:
            for name in names:
                arguments = (system, menu, root, stream.seed, length, name, seed)
                tasks.append((stream.name, name, arguments))
            tasks.append((stream.name, ORACLE, (system, menu, root, stream.seed, length)))
        rows = run_tasks(pool, tasks, progress)
    energy = spec.open(registry, menu, meter, 0).energy_per_inference()
    quality_metric = spec.quality(spec.settings.objective.get("quality", "r2")).metric
    replays: dict[str, ReplayResult] = {}
    standings: dict[str, dict[str, Standing]] = {}
    best: dict[str, str] = {}
    for stream in generated:
        replay = ReplayResult(
            system=system,
            menu=menu,
            seed=seed,
            data=f"generated:{stream.name}",
            samples=stream.samples,
            models=spec.settings.models,
            window=spec.settings.window,
            approaches=[rows[stream.name, n] for n in [*names, ORACLE]],
            drift_regions=stream.regions,
            energy_per_model=energy,
            quality_metric=quality_metric,
            drift_conditions=stream.kinds,
        )
        replays[stream.name] = replay
        best[stream.name], standings[stream.name] = compare(replay)
    drifting = {stream.name: bool(stream.drifts) for stream in generated}
    return SuiteResult(
        system=system,
        menu=menu,
        seed=seed,
        samples=length,
        streams=[stream.describe() for stream in generated],
        best_fixed=best,
        standings=standings,
        distribution=distribution(standings, drifting),
        seconds=time.perf_counter() - started,
        replays=replays,
    )
