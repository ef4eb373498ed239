"""The ``harmonia`` command: thin, it calls the modules that do the work."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.table import Table

from harmonia.cli_demo import DEMO_RATE, live_demo
from harmonia.cli_deploy import deploy_app
from harmonia.cli_domains import EXIT_INVALID, _call, _wide_console, domains_app, keys_app
from harmonia.cli_nodes import nodes_app
from harmonia.cli_registry import datasets_app, models_app
from harmonia.cli_replay import SYSTEM_NAMES, replay, require_menu, require_system
from harmonia.core.errors import EnergyMeterUnavailable, HarmoniaError, PolicyError
from harmonia.core.units import format_joules
from harmonia.energy import auto_meter, get_meter
from harmonia.policies import PRESETS, dump_policy, load_policy

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


app.command()(replay)


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
    reference = require_system(console, system)
    require_menu(console, reference, menu)
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
