"""The ``harmonia`` command: thin, it calls the modules that do the work."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from harmonia.cli_demo import DEMO_RATE, live_demo
from harmonia.cli_deploy import EXIT_CLUSTER, deploy_app
from harmonia.cli_domains import _call, _wide_console, domains_app, keys_app
from harmonia.cli_nodes import nodes_app
from harmonia.cli_registry import datasets_app, models_app
from harmonia.core.errors import EnergyMeterUnavailable, HarmoniaError, PolicyError
from harmonia.core.units import format_joules, format_mj
from harmonia.energy import auto_meter, get_meter
from harmonia.policies import PRESETS, dump_policy, load_policy
from harmonia.replay.results import ReplayResult, ServiceResult
from harmonia.systems import ReferenceSystem, reference_system, system_names

# Plain help (no rich markup mode): rich's option panels label every flag `<bool>` and read
# `[domain/]` in a help text as markup; and no local variables in a traceback (tokens).
app = typer.Typer(
    help="Harmonia: keep ML services accurate and frugal.",
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_show_locals=False,
)
policy_app = typer.Typer(help="Validate, inspect and set policies.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")

EXIT_INVALID = 2


@policy_app.command("validate")
def policy_validate(
    files: Annotated[
        list[Path], typer.Argument(metavar="FILE...", help="policy files (YAML or JSON)")
    ],
) -> None:
    """Print ok for each valid policy; print the errors and exit 2 if any is invalid."""
    console = _wide_console()
    failed = False
    for file in files:
        try:
            load_policy(file)
        except PolicyError as error:
            failed = True
            console.print(str(error), markup=False)
            continue
        console.print("ok" if len(files) == 1 else f"ok  {file}", markup=False)
    if failed:
        raise typer.Exit(EXIT_INVALID)


@policy_app.command("show")
def policy_show(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="the policy (YAML or JSON)")],
    fmt: Annotated[str, typer.Option("--format", help="yaml or json")] = "yaml",
) -> None:
    """Print a policy as Harmonia reads it (a Harmonica policy comes out converted)."""
    try:
        policy = load_policy(file)
    except PolicyError as error:
        _wide_console().print(str(error), markup=False)
        raise typer.Exit(EXIT_INVALID) from None
    typer.echo(dump_policy(policy, fmt), nl=False)


@policy_app.command("put")
def policy_put(
    app_name: Annotated[str, typer.Argument(metavar="APP", help="the registered application")],
    file: Annotated[Path, typer.Argument(metavar="FILE", help="the policy (YAML or JSON)")],
    service: Annotated[
        str | None, typer.Option(help="the service it governs (needed when the app has several)")
    ] = None,
    server: Annotated[str, typer.Option(help="the Harmonia server's URL")] = (
        "http://127.0.0.1:8000"
    ),
    token: Annotated[
        str,
        typer.Option(
            envvar=["HARMONIA_APP_TOKEN", "HARMONIA_TOKEN", "HARMONIA_ADMIN_TOKEN"],
            help="the application's token (from registration), or the admin token",
        ),
    ] = "",
) -> None:
    """Set the policy of an application's service on a running server; it is in force from
    the next window. The server checks it and names every bad field."""
    path = f"/api/v1/apps/{app_name}" + (f"/services/{service}" if service else "") + "/policy"
    stored = _call("PUT", server, path, token, text=_read_text(file))
    typer.echo(f"policy of {stored['app']}/{stored['service']}: version {stored['version']}")


#: the installed reference systems (entry points of ``harmonia.systems``), for help texts
SYSTEM_NAMES = " or ".join(system_names())


def _require_system(console: Console, system: str) -> ReferenceSystem:
    """The reference system ``system``; exit 2 with a clear message unless it is installed."""
    try:
        return reference_system(system)
    except LookupError:
        console.print(
            f"error: unknown system {system!r}; available: {', '.join(system_names())}",
            markup=False,
        )
        raise typer.Exit(EXIT_INVALID) from None


def _require_menu(console: Console, reference: ReferenceSystem, menu: str) -> None:
    """Exit 2 unless ``menu`` is one of the system's model menus (if it has any)."""
    if reference.menus and menu not in reference.menus:
        console.print(
            f"error: unknown menu {menu!r}; choose {' or '.join(reference.menus)}", markup=False
        )
        raise typer.Exit(EXIT_INVALID)


def _busy_work(seconds: float) -> int:
    """A fixed CPU workload to measure: matrix products for about ``seconds``."""
    matrix = np.random.default_rng(0).random((200, 200))
    deadline = time.perf_counter() + seconds
    rounds = 0
    while time.perf_counter() < deadline:
        matrix = np.tanh(matrix @ matrix.T / 200.0)
        rounds += 1
    return rounds


@app.command()
def energy(
    backend: Annotated[str, typer.Option(help="auto, powercap, nvml or estimate")] = "auto",
    seconds: Annotated[float, typer.Option(help="length of the sample workload")] = 0.3,
) -> None:
    """Show which energy backend Harmonia uses here, and a sample reading."""
    console = _wide_console()
    try:
        if backend == "auto":
            meter, notes = auto_meter()
        else:
            meter, notes = get_meter(backend), []
    except (EnergyMeterUnavailable, ValueError) as error:
        console.print(f"error: {error}", markup=False)
        raise typer.Exit(EXIT_INVALID) from None
    console.print(f"backend: {type(meter).__name__} (source: {meter.source})", markup=False)
    for note in notes:
        console.print(f"  skipped {note}", markup=False)
    with meter.measure() as measurement:
        rounds = _busy_work(seconds)
    reading = measurement.reading
    assert reading is not None
    console.print(
        f"sample: {rounds} matrix products in {reading.seconds:.3f} s used "
        f"{format_joules(reading.joules)} ({reading.joules / max(reading.seconds, 1e-9):.1f} W) "
        f"[{reading.source}: {reading.detail}]",
        markup=False,
    )


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="folder for the demo's results")] = Path("build/demo"),
    seconds: Annotated[
        float | None, typer.Option(help="stop after this long (default: at Ctrl-C)")
    ] = None,
    rate: Annotated[float, typer.Option(help="live observations per second")] = DEMO_RATE,
    seed: int = 0,
) -> None:
    """Harmonia end to end: validate the preset policies, read energy, replay every approach
    over the drifted PeMS stream, then serve the dashboard with the traffic system running
    live under the `harmonia` strategy, printing each adaptation and why as it happens.
    """
    console = _wide_console()
    console.rule("1. preset policies")
    files = sorted(p for p in PRESETS.rglob("*") if p.suffix in {".yaml", ".yml", ".json"})
    for file in files:
        try:
            policy = load_policy(file)
            console.print(
                f"ok  {file.relative_to(PRESETS)}  ({policy.strategy}, {policy.window})",
                markup=False,
            )
        except PolicyError as error:
            console.print(str(error), markup=False)
            raise typer.Exit(EXIT_INVALID) from None

    console.rule("2. energy")
    energy(backend="auto", seconds=0.3)

    console.rule("3. the replay lab: every approach on the drifted PeMS stream")
    live = out / "live"
    shutil.rmtree(live, ignore_errors=True)
    results = live / "experiments" / "traffic-demo"  # where the dashboard finds experiments
    replay(
        "traffic",
        approaches="all",
        out=results,
        menu="harmonia",
        data=None,
        seed=seed,
        workers=None,
        samples=None,
    )
    console.print(
        f"open {results / 'tradeoff.html'} and {results / 'timeline.html'} to see who wins "
        "and why, or the Experiments page of the dashboard",
        markup=False,
    )

    console.rule("4. live: the server, its dashboard, the traffic system as an sdk user")
    live_demo(console, live, seconds, rate)


_METRIC_HEADERS = {"r2": "R²", "mae": "MAE", "accuracy": "accuracy", "confidence": "conf."}
#: what the short headers of the results table stand for, under it
_RESULTS_KEY = (
    "mJ/inf: energy per inference; ms/inf: inference time; sw/rt/ru: switches/retrains/reuses"
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
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
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


@app.command()
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
    reference = _require_system(console, system)
    _require_menu(console, reference, menu)
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

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
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


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="address to bind (default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default 8000)")] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="its database, experiments and trained models (default: HARMONIA_DATA_DIR, "
            "else .harmonia); the demo's: build/demo/live",
        ),
    ] = None,
) -> None:
    """Run the Harmonia server (settings from HARMONIA_* variables and .env)."""
    import secrets

    import uvicorn

    from harmonia.compat.harmonica.tool import HarmonicaOptions
    from harmonia.compat.qoa4ml.routes import QoA4MLOptions
    from harmonia.server.app import create_app
    from harmonia.settings import Settings
    from harmonia.store import Store, sqlite_url

    settings = Settings() if data_dir is None else Settings(data_dir=data_dir)
    token = settings.admin_token or secrets.token_urlsafe(24)
    store = Store(
        settings.database_url or sqlite_url(settings.data_dir),
        telemetry_retention_days=settings.telemetry_retention_days,
    )
    console = _wide_console()
    if not settings.admin_token:
        console.print(f"admin token: {token}", markup=False)
    bind_host, bind_port = host or settings.host, port or settings.port
    console.print(f"serving on http://{bind_host}:{bind_port} ({store.engine.url})", markup=False)
    console.print(f"data directory: {settings.data_dir.resolve()}", markup=False)
    uvicorn.run(
        create_app(
            store,
            token,
            data_dir=settings.data_dir,
            mqtt_url=settings.mqtt_url,
            amqp_url=settings.amqp_url,
            guards=settings.guards(),
            qoa4ml_options=QoA4MLOptions.from_settings(settings),
            harmonica_options=HarmonicaOptions.from_settings(settings),
            carbon=settings.carbon(),
            artifacts=settings.artifacts(),
            max_artifact_bytes=settings.max_artifact_bytes,
            replica=settings.replica(bind_port),
        ),
        host=bind_host,
        port=bind_port,
        log_level="warning",
    )


@app.command()
def run(
    system: Annotated[
        str,
        typer.Argument(metavar="SYSTEM", help=f"the reference system to run live: {SYSTEM_NAMES}"),
    ],
    server: Annotated[
        str, typer.Option(help="the Harmonia server's URL")
    ] = "http://127.0.0.1:8000",
    app_name: Annotated[str, typer.Option("--app", help="the registered application")] = "traffic",
    token: Annotated[
        str, typer.Option(envvar="HARMONIA_APP_TOKEN", help="the application's token")
    ] = "",
    rate: Annotated[
        float | None, typer.Option(help="observations per second (default: max)")
    ] = None,
    menu: Annotated[
        str, typer.Option(help="the model menu, for a system with menus (traffic: harmone)")
    ] = "harmonia",
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            "--scenario",
            help="the system's data file (traffic: a CSV with a 'flow' column; vision: a "
            "scenario file); default: the shipped one",
        ),
    ] = None,
    loop: Annotated[
        bool, typer.Option("--loop", help="start the data again at its end, until stopped")
    ] = False,
    samples: Annotated[
        int | None, typer.Option(help="stop after serving this many (with --loop, any number)")
    ] = None,
) -> None:
    """Run a reference system live, reporting to a Harmonia server and obeying its actions.

    The server, the application and the token are checked first: a wrong one stops the
    run at once with one line saying which (exit 2).
    """
    from harmonia.sdk import TransportError
    from harmonia.settings import Settings

    console = _wide_console()
    reference = _require_system(console, system)
    _require_menu(console, reference, menu)
    if not token:
        console.print("error: give --token or HARMONIA_APP_TOKEN (from registration)", markup=False)
        raise typer.Exit(EXIT_INVALID)
    if samples is not None and samples < 1:
        console.print(f"error: --samples must be at least 1, got {samples}", markup=False)
        raise typer.Exit(EXIT_INVALID)
    if data is not None and not data.is_file():  # a local mistake first, before the server's
        console.print(f"error: {data}: cannot read (No such file)", markup=False)
        raise typer.Exit(EXIT_INVALID)
    _check_app_access(server, app_name, token)
    try:
        done = reference.run_live(
            server,
            app_name,
            token,
            data=data,
            data_dir=Settings().data_dir,
            menu=menu,
            rate=rate,
            loop=loop,
            limit=samples,
        )
    except ValueError as error:
        if not isinstance(error, HarmoniaError):  # only a bad data file, before anything ran
            raise
        console.print(f"error: {error}", markup=False)
        raise typer.Exit(EXIT_INVALID) from None
    except TransportError as error:  # the server went away, or refused what the system is
        console.print(f"error: {error.message}", markup=False)
        raise typer.Exit(EXIT_INVALID) from None
    console.print(f"served {done.served} {reference.unit}; actions applied: {len(done.applied)}")
    for applied in done.applied:
        console.print(f"  {applied}", markup=False)


def _check_app_access(server: str, app_name: str, token: str) -> None:
    """Exit 2 with one line, before any model loads, unless ``server`` answers, knows
    ``app_name`` and takes ``token`` for it (an empty read of its telemetry)."""
    _call(
        "GET",
        server,
        f"/api/v1/apps/{app_name}/telemetry.csv?start=0&end=0",
        token,
        json_reply=False,
        hints={
            403: "give the token its registration printed, with --token or HARMONIA_APP_TOKEN",
            404: "register it first: harmonia apps register FILE",
        },
    )


def _get(server: str, path: str) -> Any:
    """The JSON of a read that needs no token; one line and exit 2 on any failure."""
    return _call("GET", server, path, "", anyone=True)


SERVER_OPTION = typer.Option(help="the Harmonia server's URL")


apps_app = typer.Typer(help="Register and list applications.")
app.add_typer(apps_app, name="apps")
app.add_typer(domains_app, name="domains")
app.add_typer(keys_app, name="keys")
app.add_typer(nodes_app, name="nodes")
app.add_typer(models_app, name="models")
app.add_typer(datasets_app, name="datasets")


@apps_app.callback(invoke_without_command=True)
def apps(
    context: typer.Context, server: Annotated[str, SERVER_OPTION] = "http://127.0.0.1:8000"
) -> None:
    """List the registered applications (without a subcommand)."""
    if context.invoked_subcommand is not None:
        return
    table = Table("name", "owner", "stages", "services", "effector")
    for item in _get(server, "/api/v1/apps"):
        stages = [stage["name"] for stage in item["stages"]]
        services = [s["name"] for stage in item["stages"] for s in stage["services"]]
        table.add_row(
            item["name"],
            item["owner"],
            " → ".join(stages),
            ", ".join(services),
            item["effector_url"] or "pull",
        )
    _wide_console().print(table)


@apps_app.command("register")
def apps_register(
    file: Annotated[
        Path, typer.Argument(metavar="FILE", help="the application's YAML (see examples/apps)")
    ],
    server: Annotated[str, SERVER_OPTION] = "http://127.0.0.1:8000",
    admin_token: Annotated[
        str,
        typer.Option(
            "--admin-token",
            "--token",
            envvar=["HARMONIA_ADMIN_TOKEN", "HARMONIA_TOKEN"],
            help="the server's admin token, or a key with write on the app's domain",
        ),
    ] = "",
) -> None:
    """Register an application (its stages and services) and print its ids and token."""
    import yaml

    from harmonia.bounded import load_yaml

    try:
        document = load_yaml(_read_text(file))
    except (ValueError, yaml.YAMLError) as error:
        _wide_console().print(f"error: {file}: {' '.join(str(error).split())}", markup=False)
        raise typer.Exit(EXIT_INVALID) from None
    registered = _call("POST", server, "/api/v1/apps", admin_token, document)
    typer.echo(f"app {registered['name']}: id {registered['id']}")
    for stage, stage_id in registered["stages"].items():
        typer.echo(f"  stage {stage}: id {stage_id}")
    for service, service_id in registered["services"].items():
        typer.echo(f"  service {service}: id {service_id}")
    typer.echo(f"token (shown once): {registered['token']}")


def _read_text(file: Path) -> str:
    """The file's text; one line naming the file and exit 2 when it cannot be read."""
    try:
        return file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        _wide_console().print(f"error: {file}: cannot read ({reason})", markup=False)
        raise typer.Exit(EXIT_INVALID) from None


@app.command()
def policies(
    app_name: Annotated[str, typer.Argument(metavar="APP")],
    server: Annotated[str, SERVER_OPTION] = "http://127.0.0.1:8000",
) -> None:
    """Show the policy in force for an application."""
    from harmonia.core.policy import parse_policy

    stored = _get(server, f"/api/v1/apps/{app_name}/policy")
    typer.echo(f"# version {stored['version']}")
    typer.echo(dump_policy(parse_policy(stored["document"])), nl=False)


@app.command()
def actions(
    app_name: Annotated[str, typer.Argument(metavar="APP")],
    status: Annotated[
        str | None, typer.Option(help="pending, delivered, applied or failed")
    ] = None,
    limit: int = 50,
    server: Annotated[str, SERVER_OPTION] = "http://127.0.0.1:8000",
) -> None:
    """List an application's actions, newest first, with why each was taken."""
    query = f"?limit={limit}" + (f"&status={status}" if status else "")
    table = Table("id", "kind", "target", "status", "trigger", "reason")
    for item in _get(server, f"/api/v1/apps/{app_name}/actions{query}"):
        target = (item["model"] or "") + (f" v{item['version']}" if item["version"] else "")
        table.add_row(
            str(item["id"]), item["kind"], target, item["status"], item["trigger"], item["reason"]
        )
    _wide_console().print(table)


app.add_typer(deploy_app, name="deploy")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
