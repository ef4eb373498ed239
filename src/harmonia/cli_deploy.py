"""``harmonia deploy``: place services on nodes and say why each replica went where it did
(``plan``), write the plan as Kubernetes manifests (``render``) and apply them to a cluster
(``apply``) (`docs/orchestration.md`, `docs/kubernetes.md`); ``self`` comes from
`harmonia.cli_deploy_self`. Apart from `harmonia.cli` so that the command stays thin; it mounts
this group."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from harmonia.cli_deploy_self import deploy_self, domain_target
from harmonia.cli_domains import EXIT_INVALID, _wide_console, stderr_console

deploy_app = typer.Typer(help="Place services on nodes, and deploy them.", no_args_is_help=True)
deploy_app.command("self")(deploy_self)
NODES_OPTION = typer.Option(
    "--nodes", help="node inventory: YAML or JSON, Harmonia's or ROHE's add_node"
)
SERVICES_OPTION = typer.Option(
    "--services", help="service requirements: YAML or JSON, Harmonia's or ROHE's add_service"
)


def _load_inventory(console: Console, nodes: Path, services: Path) -> tuple[list[Any], list[Any]]:
    """Nodes and services from their files; exit 2 naming the bad field."""
    from harmonia.orchestration import InventoryError
    from harmonia.orchestration.loaders import load_nodes, load_services

    try:
        return load_nodes(nodes), load_services(services)
    except InventoryError as error:
        console.print(f"error: {error}", markup=False)
        raise typer.Exit(EXIT_INVALID) from None


def _make_placer(console: Console, name: str, objective: str, time_limit: float | None) -> Any:
    """Placer ``name`` for ``objective``; exit 2 if it is unknown or refuses the settings."""
    from harmonia.orchestration import OBJECTIVES, create_placer

    if objective not in OBJECTIVES:
        console.print(
            f"error: unknown objective {objective!r}; choose {', '.join(OBJECTIVES)}", markup=False
        )
        raise typer.Exit(EXIT_INVALID)
    try:
        placer, limited = create_placer(name, objective, time_limit)
    except (LookupError, TypeError, ValueError) as error:
        console.print(f"error: {error}", markup=False)
        raise typer.Exit(EXIT_INVALID) from None
    if time_limit is not None and not limited:
        Console(stderr=True).print(f"note: placer {name} takes no time limit", markup=False)
    return placer


def _place(console: Console, placer: Any, nodes: list[Any], services: list[Any]) -> Any:
    """The placer's plan; exit 2 on inputs or settings it refuses."""
    from harmonia.orchestration import InventoryError, SolverUnavailable

    try:
        if sys.stdout.isatty():
            with Console(stderr=True).status(f"placing with {placer.name}…"):
                return placer.place(nodes, services)
        return placer.place(nodes, services)
    except (InventoryError, SolverUnavailable, ValueError) as error:
        console.print(f"error: {error}", markup=False)
        raise typer.Exit(EXIT_INVALID) from None


def _plan_summary(plan: Any, replicas: int) -> str:
    value = plan.objective
    bound = "" if value.bound is None else f", bound {value.bound:g}"
    gap = "" if plan.gap is None else f", gap {plan.gap:.2%}"
    return (
        f"{plan.placer}: {plan.status}; {value.name} {value.value:g} {value.unit}{bound}{gap}; "
        f"{len(plan.placements)}/{replicas} replicas on {len(plan.nodes_used)} node(s) "
        f"in {plan.seconds:.2f} s"
    )


def _plan_tables(plan: Any, nodes: list[Any], services: list[Any]) -> list[Table]:
    """Nodes in use with their load, services with where they went and what turned nodes
    down, and what could not be placed."""
    by_service = {s.name: s for s in services}
    by_node = plan.by_node()
    loads = Table("node", "replicas", "services", "CPU (m)", "memory (MiB)", title="nodes in use")
    for node in nodes:
        hosted = by_node.get(node.name)
        if not hosted:
            continue
        counts: dict[str, int] = {}
        for placement in hosted:
            counts[placement.service] = counts.get(placement.service, 0) + 1
        cpu = sum(by_service[p.service].cpu_millicores for p in hosted)
        memory = sum(by_service[p.service].memory_mib for p in hosted)
        loads.add_row(
            node.name,
            str(len(hosted)),
            ", ".join(f"{name}×{count}" for name, count in counts.items()),
            f"{cpu}/{node.cpu_millicores}",
            f"{memory}/{node.memory_mib}",
        )
    why = Table("service", "placed", "nodes", "nodes turned down", title="services")
    for explanation in plan.explanations:
        total = explanation.placed + explanation.unplaced
        where = ", ".join(f"{n}×{c}" for n, c in explanation.nodes.items())
        if explanation.more_nodes:
            where += f" +{explanation.more_nodes} more"
        rejected = ", ".join(f"{kind} {count}" for kind, count in explanation.rejected.items())
        why.add_row(explanation.service, f"{explanation.placed}/{total}", where, rejected)
    tables = [loads, why]
    if plan.unplaced:
        left = Table("service", "replicas", "kind", "reason", title="not placed")
        grouped: dict[tuple[str, str, str], list[int]] = {}
        for item in plan.unplaced:
            grouped.setdefault((item.service, item.kind, item.reason), []).append(item.replica)
        for (service, kind, reason), replicas in grouped.items():
            left.add_row(service, str(len(replicas)), kind, reason)
        tables.append(left)
    return tables


@deploy_app.command("plan")
def deploy_plan(
    nodes: Annotated[Path, NODES_OPTION],
    services: Annotated[Path, SERVICES_OPTION],
    placer: Annotated[
        str, typer.Option(help="first-fit, best-fit, worst-fit, optimal, or a plugin's name")
    ],
    objective: Annotated[
        str, typer.Option(help="what to minimise (optimal) or report: nodes, energy, imbalance")
    ] = "nodes",
    time_limit: Annotated[
        float | None, typer.Option("--time-limit", help="seconds the optimal placer may take")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the plan as JSON")] = False,
) -> None:
    """Place every replica of the services on the nodes, and say why each went where it did.

    Replicas no node can take are listed with the reason; the command still succeeds.
    """
    console = _wide_console()
    inventory, requirements = _load_inventory(console, nodes, services)
    chosen = _make_placer(console, placer, objective, time_limit)
    plan = _place(console, chosen, inventory, requirements)
    if as_json:
        typer.echo(plan.model_dump_json(indent=2))
        return
    console.print(_plan_summary(plan, sum(s.replicas for s in requirements)), markup=False)
    for note in plan.notes:
        console.print(f"  {note}", markup=False)
    for table in _plan_tables(plan, inventory, requirements):
        console.print(table)


#: exit status when no cluster answers or it refuses a manifest (invalid input exits 2)
EXIT_CLUSTER = 1
PLACER_OPTION = typer.Option(help="the placer, unless --plan is given")
PLAN_OPTION = typer.Option("--plan", help="a plan saved by `deploy plan --json`, not placing")
NAMESPACE_OPTION = typer.Option(help="namespace (default: HARMONIA_KUBE_NAMESPACE, 'default')")
APP_OPTION = typer.Option("--app", help="application of the services (HARMONIA_APP in pods)")


def _needs_server_extra(console: Console, error: ModuleNotFoundError) -> typer.Exit:
    """Exit 2 naming the missing package, unless it is not one of the server extra's."""
    if error.name not in {"kubernetes", "kubernetes_validate"}:
        raise error
    console.print(f"error: this needs {error.name}: pip install 'harmonia[server]'", markup=False)
    return typer.Exit(EXIT_INVALID)


def _rendered_manifests(
    console: Console,
    nodes: Path,
    services: Path,
    placer: str,
    plan_file: Path | None,
    namespace: str | None,
    app_name: str | None,
) -> list[dict[str, Any]]:
    """Place (or read the plan), render and validate; exit 2 naming whatever is wrong."""
    from pydantic import ValidationError

    from harmonia.orchestration import Plan
    from harmonia.orchestration.kubernetes import (
        KubernetesError,
        render_plan,
        validate_manifests,
    )
    from harmonia.settings import Settings

    inventory, requirements = _load_inventory(console, nodes, services)
    if plan_file is None:
        chosen = _make_placer(console, placer, "nodes", None)
        plan = _place(console, chosen, inventory, requirements)
    else:
        try:
            plan = Plan.model_validate_json(plan_file.read_bytes())
        except (OSError, ValidationError) as error:
            console.print(f"error: {plan_file}: {error}", markup=False)
            raise typer.Exit(EXIT_INVALID) from None
    options = Settings().kube_render_options(namespace, app_name)
    try:
        rendered = render_plan(plan, requirements, inventory, options)
        validate_manifests(rendered.documents, options.kubernetes_version)
    except (KubernetesError, ValueError) as error:
        console.print(f"error: {error}", markup=False)
        raise typer.Exit(EXIT_INVALID) from None
    except ModuleNotFoundError as error:
        raise _needs_server_extra(console, error) from None
    for note in rendered.notes:
        console.print(f"note: {note}", markup=False)
    return rendered.documents


@deploy_app.command("render")
def deploy_render(
    nodes: Annotated[Path, NODES_OPTION],
    services: Annotated[Path, SERVICES_OPTION],
    placer: Annotated[str, PLACER_OPTION] = "best-fit",
    plan_file: Annotated[Path | None, PLAN_OPTION] = None,
    namespace: Annotated[str | None, NAMESPACE_OPTION] = None,
    app_name: Annotated[str | None, APP_OPTION] = None,
    out: Annotated[Path | None, typer.Option(help="file to write (default: stdout)")] = None,
) -> None:
    """Write the plan as Kubernetes Deployments and Services, validated against the schemas.

    One Deployment per service and node, pinned there; one Service per service. Unplaced
    replicas are left out and listed.
    """
    from harmonia.orchestration.kubernetes import dump_manifests, write_manifests

    err = stderr_console()
    documents = _rendered_manifests(err, nodes, services, placer, plan_file, namespace, app_name)
    kinds = ", ".join(
        f"{sum(d['kind'] == kind for d in documents)} {kind}s" for kind in ("Service", "Deployment")
    )
    if out is None:
        typer.echo(dump_manifests(documents), nl=False)
        err.print(f"rendered {kinds}", markup=False)
    else:
        write_manifests(documents, out)
        err.print(f"wrote {kinds} to {out}", markup=False)


@deploy_app.command("apply")
def deploy_apply(
    manifests: Annotated[
        Path | None, typer.Option(help="manifests from `deploy render`; '-' reads stdin")
    ] = None,
    nodes: Annotated[Path | None, NODES_OPTION] = None,
    services: Annotated[Path | None, SERVICES_OPTION] = None,
    placer: Annotated[str, PLACER_OPTION] = "best-fit",
    plan_file: Annotated[Path | None, PLAN_OPTION] = None,
    app_name: Annotated[str | None, APP_OPTION] = None,
    context: Annotated[
        str | None, typer.Option(help="kubeconfig context (default: HARMONIA_KUBE_CONTEXT)")
    ] = None,
    namespace: Annotated[str | None, NAMESPACE_OPTION] = None,
    domain: Annotated[
        str | None,
        typer.Option(help="apply to this domain's target: its context and namespace"),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="the cluster checks all, stores nothing")
    ] = False,
    prune: Annotated[
        bool, typer.Option("--prune", help="delete what an earlier plan applied and this lacks")
    ] = False,
) -> None:
    """Apply manifests to a cluster with server-side apply (field manager `harmonia`).

    The manifests come from a file, or are rendered from the inputs of `render`. With
    --domain, the domain's context and namespace are the target (--context and --namespace
    win). Exits 2 on invalid input, 1 if no cluster answers or it refuses a manifest.
    """
    from harmonia.orchestration.kubernetes import (
        KubernetesError,
        ManifestError,
        apply_manifests,
        parse_manifests,
        read_manifests,
        validate_manifests,
    )
    from harmonia.settings import Settings

    err = stderr_console()
    rendering = nodes is not None or services is not None or plan_file is not None
    if (manifests is None) == (not rendering) or (rendering and None in (nodes, services)):
        err.print("error: give --manifests FILE, or --nodes and --services", markup=False)
        raise typer.Exit(EXIT_INVALID)
    if domain is not None:
        target_domain = domain_target(err, domain)
        context = context or target_domain.kube_context
        namespace = namespace or target_domain.namespace
    settings = Settings()
    try:
        if manifests is None:
            assert nodes is not None and services is not None
            documents = _rendered_manifests(
                err, nodes, services, placer, plan_file, namespace, app_name
            )
        else:
            documents = (
                parse_manifests(sys.stdin.read(), "<stdin>")
                if str(manifests) == "-"
                else read_manifests(manifests)
            )
            version = settings.kube_render_options().kubernetes_version
            validate_manifests(documents, version, source=str(manifests))
        target = settings.kube_target(context, namespace)
        done = apply_manifests(documents, target, dry_run=dry_run, namespace=namespace, prune=prune)
    except (ManifestError, ValueError) as error:
        err.print(f"error: {error}", markup=False)
        raise typer.Exit(EXIT_INVALID) from None
    except KubernetesError as error:
        err.print(f"error: {error}", markup=False)
        raise typer.Exit(EXIT_CLUSTER) from None
    except ModuleNotFoundError as error:
        raise _needs_server_extra(err, error) from None
    console = _wide_console()
    for applied in done:
        console.print(str(applied), markup=False)
