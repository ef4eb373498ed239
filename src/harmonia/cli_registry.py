"""``harmonia models push|pull|list|promote`` and ``harmonia datasets push|pull|list``: the
registry of a running server over HTTP (`docs/registry.md`), with progress bars for the
transfers. A pull lands in its file only once its sha256 matches the server's.

Apart from `harmonia.cli` so that the command stays thin; it mounts these groups. Every
command takes ``--server`` and ``--token`` (a domain key with the scope the command needs, or
the admin token: ``HARMONIA_TOKEN``, else ``HARMONIA_ADMIN_TOKEN``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from harmonia.cli_domains import DEFAULT_SERVER, EXIT_INVALID, Server, Token
from harmonia.core.numbers import is_number
from harmonia.core.units import format_mj

models_app = typer.Typer(help="Models of the registry: push, pull, list, promote.")
datasets_app = typer.Typer(help="Datasets of the registry: push, pull, list.")

Domain = Annotated[str, typer.Option(help="the domain that owns it")]
Name = Annotated[str, typer.Argument(metavar="NAME", help="its name in the domain")]


def _console() -> Console:
    return Console(highlight=False, soft_wrap=True)


@contextmanager
def _client(server: str, token: str) -> Iterator[Any]:
    """A `CatalogClient`; any refusal or failure becomes a readable error and exit 2."""
    import httpx

    from harmonia.registry.client import CatalogClient
    from harmonia.registry.errors import RegistryError

    console = _console()
    if not token:
        console.print("error: give --token, HARMONIA_TOKEN or HARMONIA_ADMIN_TOKEN", markup=False)
        raise typer.Exit(EXIT_INVALID)
    try:
        with CatalogClient(server, token) as client:
            yield client
    except RegistryError as error:
        console.print(f"error: {error}", markup=False)
        raise typer.Exit(EXIT_INVALID) from None
    except httpx.HTTPError as error:
        console.print(f"error: cannot reach {server}: {error}", markup=False)
        raise typer.Exit(EXIT_INVALID) from None
    except OSError as error:  # the local file of a push or a pull
        where = f"{error.filename}: " if error.filename else ""
        console.print(f"error: {where}{error.strerror or error}", markup=False)
        raise typer.Exit(EXIT_INVALID) from None


@contextmanager
def _transfer(description: str, total: int | None) -> Iterator[tuple[Callable[[int], None], Any]]:
    """A progress bar in bytes, with speed and time left; yields (advance, set_total)."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=_console(), transient=False) as progress:
        task = progress.add_task(description, total=total)

        def advance(n: int) -> None:
            progress.update(task, advance=n)

        def set_total(n: int) -> None:
            progress.update(task, total=n)

        yield advance, set_total


def _metadata(
    metadata: str | None,
    label: str | None,
    tags: list[str] | None,
    trained_on: str | None,
    retrained_from: str | None,
) -> dict[str, Any]:
    """``--metadata`` (JSON, or @file with JSON) with the options over it."""
    document: dict[str, Any] = {}
    if metadata:
        text = _metadata_text(metadata)
        try:
            loaded = json.loads(text)
        except ValueError as error:
            _console().print(f"error: --metadata is not JSON: {error}", markup=False)
            raise typer.Exit(EXIT_INVALID) from None
        if not isinstance(loaded, dict):
            _console().print("error: --metadata must be a JSON object", markup=False)
            raise typer.Exit(EXIT_INVALID)
        document.update(loaded)
    for key, value in (
        ("label", label),
        ("tags", tags),
        ("trained_on", trained_on),
        ("retrained_from", retrained_from),
    ):
        if value:
            document[key] = value
    return document


def _metadata_text(metadata: str) -> str:
    """``--metadata`` itself, or the text of the file ``@file`` names; exit 2 with one line
    naming the file when it cannot be read."""
    if not metadata.startswith("@"):
        return metadata
    file = Path(metadata[1:])
    try:
        return file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        _console().print(f"error: --metadata {file}: cannot read ({reason})", markup=False)
        raise typer.Exit(EXIT_INVALID) from None


def _versions_table(found: list[Any]) -> Table:
    """The versions; with ``mJ/inf`` where any stored its ``energy_j_per_inference`` (kept in
    joules, shown in mJ as everywhere: `harmonia.core.units`)."""
    energy = [_stored_energy(v) for v in found]
    shows_energy = any(e is not None for e in energy)
    table = Table("domain", "name", "version", "label", "status", "tags", "size", "sha256")
    if shows_energy:
        table.add_column("mJ/inf", justify="right")
    for v, joules in zip(found, energy, strict=True):
        row = [
            v["domain"],
            v["name"],
            str(v["version"]),
            v["label"] or "",
            v["status"],
            ", ".join(v["tags"]),
            f"{v['size']:,}",
            v["sha256"][:12],
        ]
        if shows_energy:
            row.append(format_mj(joules, unit=False))
        table.add_row(*row)
    return table


def _stored_energy(version: dict[str, Any]) -> float | None:
    """The ``energy_j_per_inference`` a version stored in its metadata's ``energy`` figures
    (joules; `VersionMetadata`), if any."""
    value = ((version.get("metadata") or {}).get("energy") or {}).get("energy_j_per_inference")
    return float(value) if is_number(value) else None


def _add_commands(group: typer.Typer, kind: str) -> None:
    """push, pull and list of one kind (``model`` or ``dataset``)."""

    @group.command("push")
    def push(
        file: Annotated[
            Path, typer.Argument(metavar="FILE", help="the artifact's file", exists=True)
        ],
        name: Annotated[str, typer.Option(help="its name in the domain")],
        domain: Domain,
        metadata: Annotated[
            str | None, typer.Option(help="metadata as JSON, or @file.json (library, ...)")
        ] = None,
        label: Annotated[str | None, typer.Option(help="a label, unique: 1.0")] = None,
        tag: Annotated[list[str] | None, typer.Option(help="a tag (repeatable)")] = None,
        trained_on: Annotated[
            str | None, typer.Option(help="the dataset version: [domain/]name@version")
        ] = None,
        retrained_from: Annotated[
            str | None, typer.Option(help="the model version: [domain/]name@version")
        ] = None,
        server: Server = DEFAULT_SERVER,
        token: Token = "",
    ) -> None:
        """Upload a new version; the server numbers it and prints it."""
        document = _metadata(metadata, label, tag, trained_on, retrained_from)
        with (
            _client(server, token) as client,
            _transfer(f"push {name}", file.stat().st_size) as (
                advance,
                _,
            ),
        ):
            pushed = client.push(domain, kind, name, file, document, progress=advance)
        typer.echo(
            f"{pushed['domain']}/{kind}/{pushed['name']}@{pushed['version']} "
            f"({pushed['size']:,} bytes, sha256 {pushed['sha256']})"
        )

    @group.command("pull")
    def pull(
        name: Name,
        domain: Domain,
        ref: Annotated[
            str, typer.Argument(metavar="REF", help="a version, latest, an alias or a label")
        ] = "latest",
        output: Annotated[
            Path | None, typer.Option("--output", "-o", help="the file (default: its name)")
        ] = None,
        server: Server = DEFAULT_SERVER,
        token: Token = "",
    ) -> None:
        """Download a version, checked against its sha256 before it takes its file name."""
        with _client(server, token) as client:
            described = client.version(domain, kind, name, ref)
            target = output or Path(described["filename"] or name).name
            target = Path(target)
            with _transfer(f"pull {name}@{described['version']}", described["size"]) as (
                advance,
                set_total,
            ):
                client.pull(
                    domain,
                    kind,
                    name,
                    described["version"],
                    target,
                    progress=advance,
                    on_start=set_total,
                )
        typer.echo(f"{target} ({described['size']:,} bytes, sha256 {described['sha256']} ok)")

    @group.command("list")
    def list_(
        domain: Annotated[str | None, typer.Option(help="only this domain's")] = None,
        name: Annotated[str | None, typer.Option(help="only this name")] = None,
        tag: Annotated[str | None, typer.Option(help="only versions with this tag")] = None,
        status: Annotated[
            str | None, typer.Option(help="production, staging or development")
        ] = None,
        limit: int = 50,
        server: Server = DEFAULT_SERVER,
        token: Token = "",
    ) -> None:
        """The versions the token may read (its domains' and those shared with them)."""
        with _client(server, token) as client:
            found = client.search(
                kind=kind, domain=domain, name=name, tag=tag, status=status, limit=limit
            )
        _console().print(_versions_table(found))


_add_commands(models_app, "model")
_add_commands(datasets_app, "dataset")


@models_app.command("promote")
def promote(
    name: Name,
    domain: Domain,
    note: Annotated[str, typer.Option(help="why: what the approver checked")] = "",
    version: Annotated[
        int | None, typer.Option(help="the staging version the approval is for")
    ] = None,
    server: Server = DEFAULT_SERVER,
    token: Token = "",
) -> None:
    """Promote the staging version to production; the token's holder approves it (a key
    with admin on the domain), and the approval is recorded with the note."""
    with _client(server, token) as client:
        promoted = client.promote(domain, "model", name, note=note, version=version)
    approval, move = promoted["approval"], promoted["move"]
    was = move["from_version"] if move["from_version"] is not None else "none"
    typer.echo(
        f"{domain}/model/{name}: production {was} -> {move['to_version']}, approved by "
        f"{approval['approver']} (approval {approval['id']})"
    )
