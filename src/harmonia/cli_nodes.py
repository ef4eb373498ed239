"""``harmonia nodes``: the server's node inventory over HTTP — put a YAML (or ROHE's
``add_node`` JSON) inventory, list the nodes with what the deployments in force put on them,
take one out (`docs/orchestration.md`). Mounted by `harmonia.cli`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from harmonia.cli_domains import DEFAULT_SERVER, EXIT_INVALID, Server, Token, _call, _console

nodes_app = typer.Typer(help="The server's node inventory: put, list, remove.")


@nodes_app.command("put")
def put(
    file: Annotated[
        Path,
        typer.Argument(metavar="FILE", help="nodes: [...] as YAML or JSON, or ROHE's add_node"),
    ],
    server: Server = DEFAULT_SERVER,
    token: Token = "",
) -> None:
    """Add the file's nodes to the inventory, or replace their entries (admin)."""
    import yaml

    try:
        document = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        _console().print(f"error: {file}: {error}", markup=False)
        raise typer.Exit(EXIT_INVALID) from None
    nodes = _call("PUT", server, "/api/v1/nodes", token, document)
    _console().print(f"{len(nodes)} node(s) in the inventory", markup=False)


@nodes_app.command("list")
def list_nodes(server: Server = DEFAULT_SERVER, token: Token = "") -> None:
    """Each node: its capacity, the CPU the deployments in force request on it, and what
    runs there."""
    nodes = _call("GET", server, "/api/v1/nodes", token, anyone=True)
    table = Table("node", "cores", "memory MiB", "CPU requested", "runs")
    for node in nodes:
        spec = node["spec"]
        share = node["utilisation"]
        runs = ", ".join(f"{s['app']}/{s['service']}×{s['replicas']}" for s in node["services"])
        table.add_row(
            node["name"],
            str(len(spec["cores"])),
            str(spec["memory_mib"]),
            f"{node['allocated_cpu_millicores']} m" + ("" if share is None else f" ({share:.0%})"),
            runs or "-",
        )
    _console().print(table)


@nodes_app.command("remove")
def remove(
    name: Annotated[str, typer.Argument(metavar="NAME", help="the node to take out")],
    server: Server = DEFAULT_SERVER,
    token: Token = "",
) -> None:
    """Take a node out of the inventory (admin)."""
    _call("DELETE", server, f"/api/v1/nodes/{name}", token)
    _console().print(f"{name} is out of the inventory", markup=False)
