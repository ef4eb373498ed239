"""The replay lab's command: ``harmonia replay`` over a recorded stream or a suite of
generated ones, and the tables it prints (results, stages, a suite's distribution and its
streams). `harmonia.cli` registers it; ``demo`` calls it for its third step."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from harmonia.cli_deploy import EXIT_CLUSTER
from harmonia.cli_domains import EXIT_INVALID, _wide_console
from harmonia.core.units import format_mj
from harmonia.replay.results import ReplayResult, ServiceResult
from harmonia.systems import ReferenceSystem, reference_system, system_names

#: the installed reference systems (entry points of ``harmonia.systems``), for help texts
SYSTEM_NAMES = " or ".join(system_names())


def require_system(console: Console, system: str) -> ReferenceSystem:
    """The reference system ``system``; exit 2 with a clear message unless it is installed."""
    try:
        return reference_system(system)
    except LookupError:
        console.print(
            f"error: unknown system {system!r}; available: {', '.join(system_names())}",
            markup=False,
        )
        raise typer.Exit(EXIT_INVALID) from None


def require_menu(console: Console, reference: ReferenceSystem, menu: str) -> None:
    """Exit 2 unless ``menu`` is one of the system's model menus (if it has any)."""
    if reference.menus and menu not in reference.menus:
        console.print(
            f"error: unknown menu {menu!r}; choose {' or '.join(reference.menus)}", markup=False
        )
        raise typer.Exit(EXIT_INVALID)


_METRIC_HEADERS = {"r2": "R²", "mae": "MAE", "accuracy": "accuracy", "confidence": "conf."}
#: what the short headers of the results table stand for, under it
_RESULTS_KEY = (
    "mJ/inf: energy per inference; ms/inf: inference time; sw/rt/ru: switches/retrains/reuses"
)


def _progress(console: Console) -> Progress:
    """A bar of finished tasks with the one that finished last and the time so far."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


def _approach_column(table: Table) -> None:
    """The approach names, never cut or wrapped: ``single-svm`` and ``single-svm+retrain``
    must not both read ``single-s…``; the numbers wrap instead."""
    table.add_column("approach", no_wrap=True, overflow="fold")


def _results_table(result: ReplayResult) -> Table:
    """One row per approach, narrow enough for 80 columns (short headers, their key in
    the caption)."""
    names = result.metric_names
    key = _RESULTS_KEY + ("; conf.: mean confidence" if "confidence" in names else "")
    table = Table(
        title=f"{result.system}, {result.menu} menu, {result.samples} samples, seed {result.seed}",
        caption=key,
    )
    _approach_column(table)
    for header in ("mJ/inf", *(_METRIC_HEADERS.get(n, n) for n in names), "ms/inf", "sw/rt/ru"):
        table.add_column(header, justify="right", overflow="fold")
    for row in result.approaches:
        table.add_row(
            row.approach,
            format_mj(row.energy_j_per_inference, unit=False),
            *(
                f"{row.metrics.get(name, float('nan')):.2f}"
                if name == "mae"
                else f"{row.metrics.get(name, float('nan')):.4f}"
                for name in names
            ),
            f"{row.inference_ms:.4f}",
            f"{row.switches}/{row.retrains}/{row.reuses}",
        )
    return table


def _stages_table(result: ReplayResult) -> Table | None:
    """A pipeline's rows: energy per frame in each stage, and what each service did (one
    column each, so that it fits 80 columns); None for a one-service system."""
    first = result.approaches[0] if result.approaches else None
    if first is None or not first.services:
        return None
    stages, services = list(first.energy_per_stage), list(first.services)
    table = Table(
        title="per stage and per service: mJ/frame in each stage; each service's accuracy "
        "and switches/retrains/reuses"
    )
    _approach_column(table)
    for header in (*stages, *services):
        table.add_column(header, justify="right", overflow="fold")
    for row in result.approaches:
        table.add_row(
            row.approach,
            *(format_mj(row.energy_per_stage.get(stage), unit=False) for stage in stages),
            *(_service_cell(row.services[service]) for service in services),
        )
    return table


def _service_cell(done: ServiceResult) -> str:
    """What one service did within an approach: ``0.912 1/0/0``."""
    accuracy = done.metrics.get("accuracy", float("nan"))
    return f"{accuracy:.3f} {done.switches}/{done.retrains}/{done.reuses}"


def _replay_suite(
    console: Console,
    system: str,
    approaches: str,
    out: Path,
    menu: str,
    data: Path | None,
    samples: int | None,
    seed: int,
    workers: int | None,
    count: int,
    cluster: str | None = None,
) -> None:
    """`replay --suite N`: every approach over N generated streams, as a distribution
    (on the Dask scheduler at ``cluster``, if given, instead of local processes)."""
    from harmonia.replay.approaches import parse_approaches
    from harmonia.replay.cluster import ClusterError
    from harmonia.replay.generators import GENERATORS
    from harmonia.replay.suite import run_suite
    from harmonia.settings import Settings

    problem = None
    if count < 1:
        problem = f"--suite must be at least 1, got {count}"
    elif data is not None:
        problem = "--data and --suite exclude each other: a suite generates its streams"
    elif system not in GENERATORS:
        problem = f"no stream generator for {system!r}; a suite runs on: {', '.join(GENERATORS)}"
    elif cluster is not None and workers is not None:
        problem = "--workers and --cluster exclude each other: the cluster's workers run the tasks"
    if problem:
        console.print(f"error: {problem}", markup=False)
        raise typer.Exit(EXIT_INVALID)
    try:
        names = parse_approaches(approaches, system)
    except ValueError as error:
        console.print(f"error: {error}", markup=False)
        raise typer.Exit(EXIT_INVALID) from None
    with _progress(console) as bar:
        task = bar.add_task("replaying the suite", total=None)

        def advance(name: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, description=f"finished {name}")

        try:
            result = run_suite(
                system,
                count,
                approaches=names,
                seed=seed,
                menu=menu,
                samples=samples,
                data_dir=Settings().data_dir,
                workers=workers,
                progress=advance,
                notes=lambda note: console.print(note, markup=False),
                cluster=cluster,
            )
        except ValueError as error:
            console.print(f"error: {error}", markup=False)
            raise typer.Exit(EXIT_INVALID) from None
        except ClusterError as error:
            console.print(f"error: {error}", markup=False)
            raise typer.Exit(EXIT_CLUSTER) from None
    table = Table(
        title=f"{system} ({menu}): {count} generated streams, seed {seed}, "
        f"{result.seconds:.0f} s; regret = reference objective − the approach's"
    )
    for column in (
        "approach",
        "median objective",
        "worst objective",
        "median regret best fixed",
        "worst regret best fixed",
        "median regret oracle",
        "dominated",
    ):
        table.add_column(column)
    for row in result.distribution.values():
        table.add_row(
            row.approach,
            f"{row.median_objective:.4f}",
            f"{row.worst_objective:.4f}",
            f"{row.median_regret_best_fixed:+.4f}",
            f"{row.worst_regret_best_fixed:+.4f}",
            f"{row.median_regret_oracle:+.4f}",
            f"{row.dominated}/{row.streams}",
        )
    console.print(table)
    if "harmonia" in result.distribution:
        streams = Table(title="harmonia per stream")
        for column in ("stream", "drifts", "best fixed", "regret best fixed", "dominated by"):
            streams.add_column(column)
        for described in result.streams:
            name = f"{system}-{described['seed']}"
            ours = result.standings[name]["harmonia"]
            streams.add_row(
                name,
                " ".join(d["kind"] for d in described["drifts"]) or "none",
                result.best_fixed[name],
                f"{ours.regret_best_fixed:+.4f}",
                " ".join(ours.dominated_by),
            )
        console.print(streams)
    for file in result.write(out)[-2:]:
        console.print(f"wrote {file}", markup=False)


def replay(
    system: Annotated[
        str,
        typer.Argument(metavar="SYSTEM", help=f"the reference system to replay: {SYSTEM_NAMES}"),
    ],
    approaches: Annotated[
        str, typer.Option(help="'all' or a comma-separated list of approaches")
    ] = "all",
    out: Annotated[Path, typer.Option(help="folder for results and plots")] = Path("build/replay"),
    menu: Annotated[
        str, typer.Option(help="the model menu, for a system with menus (traffic: harmone)")
    ] = "harmonia",
    data: Annotated[
        Path | None,
        typer.Option(
            help="the system's data file (traffic: a CSV with a 'flow' column; vision and "
            "pipeline: a scenario file); default: the shipped one"
        ),
    ] = None,
    samples: Annotated[
        int | None, typer.Option(help="replay only the first N samples (a short run)")
    ] = None,
    seed: Annotated[int, typer.Option(help="seed of every random choice")] = 0,
    workers: Annotated[int | None, typer.Option(help="parallel processes (default: cores)")] = None,
    suite: Annotated[
        int | None,
        typer.Option(
            help="replay over N streams generated from --seed instead (--samples: their "
            "length) and report the distribution"
        ),
    ] = None,
    cluster: Annotated[
        str | None,
        typer.Option(
            metavar="ADDRESS",
            help="run the --suite tasks on the Dask scheduler at ADDRESS (tcp://host:8786) "
            "instead of local processes; needs harmonia[cluster]",
        ),
    ] = None,
) -> None:
    """Replay adaptation approaches over a recorded stream and compare them."""
    from harmonia.replay.approaches import parse_approaches
    from harmonia.replay.lab import run_lab
    from harmonia.settings import Settings

    console = _wide_console()
    reference = require_system(console, system)
    require_menu(console, reference, menu)
    if samples is not None and samples < 1:
        console.print(f"error: --samples must be at least 1, got {samples}", markup=False)
        raise typer.Exit(EXIT_INVALID)
    if suite is not None:
        _replay_suite(
            console, system, approaches, out, menu, data, samples, seed, workers, suite, cluster
        )
        return
    if cluster is not None:
        console.print("error: --cluster runs a suite's tasks: add --suite N", markup=False)
        raise typer.Exit(EXIT_INVALID)
    try:
        names = parse_approaches(approaches, system)
        # fail before any training, with the file's own error
        stream_data = reference.replay_spec().load(data, samples)
    except ValueError as error:
        console.print(f"error: {error}", markup=False)
        raise typer.Exit(EXIT_INVALID) from None

    with _progress(console) as bar:
        task = bar.add_task("replaying", total=len(names))

        def advance(name: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, description=f"finished {name}")

        run = run_lab(
            names,
            system=system,
            menu=menu,
            data=stream_data,
            out=out,
            seed=seed,
            data_dir=Settings().data_dir,
            workers=workers,
            progress=advance,
            notes=lambda note: console.print(note, markup=False),
        )
    console.print(_results_table(run.result))
    stages = _stages_table(run.result)
    if stages is not None:
        console.print(stages)
    for file in run.files:
        console.print(f"wrote {file}", markup=False)
