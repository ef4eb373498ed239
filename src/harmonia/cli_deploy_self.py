"""``harmonia deploy self``: Harmonia's own server (and optionally its PostgreSQL) as
Kubernetes manifests for one domain's namespace (`docs/deploy.md`); ``harmonia deploy apply
--manifests FILE --domain D`` applies them to the domain's context.

Apart from `harmonia.cli` so that the command stays thin; it mounts `deploy_self` in its
``deploy`` group. A domain's target (context and namespace) is read from the store the
settings name (``HARMONIA_DATABASE_URL``, else SQLite in ``HARMONIA_DATA_DIR``).
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from harmonia.cli_domains import EXIT_INVALID, stderr_console

if TYPE_CHECKING:
    from harmonia.orchestration.kubernetes import SelfOptions, SelfSecrets
    from harmonia.store import Domain

#: the namespace Harmonia is rendered into without a domain or ``--namespace``
DEFAULT_NAMESPACE = "harmonia"
HEADER = (
    "# Harmonia's own server, rendered by `harmonia deploy self`; apply it with\n"
    "# `harmonia deploy apply --manifests FILE` (docs/deploy.md). It may hold a Secret's\n"
    "# values: keep it private.\n"
)


def domain_target(console: Console, name: str) -> Domain:
    """Domain ``name`` from the store the settings name; exit 2 naming what is missing.

    A SQLite store that does not exist yet is not created: it has no domains.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from harmonia.settings import Settings
    from harmonia.store import NotFound, Store, sqlite_url

    settings = Settings()
    url = settings.database_url
    if not url:
        path = settings.data_dir / "harmonia.db"
        if not path.exists():
            console.print(
                f"error: no domain {name!r}: there is no store at {path} (domains are in the "
                "server's database: set HARMONIA_DATABASE_URL or HARMONIA_DATA_DIR)",
                markup=False,
            )
            raise typer.Exit(EXIT_INVALID)
        url = sqlite_url(settings.data_dir)
    try:
        store = Store(url)
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        console.print(f"error: cannot open the store to read domain {name!r}: {reason}")
        raise typer.Exit(EXIT_INVALID) from None
    try:
        return store.domain(name)
    except NotFound as error:
        console.print(f"error: {error}", markup=False)
        raise typer.Exit(EXIT_INVALID) from None
    finally:
        store.close()


def _kept_secret(path: Path | None, options: SelfOptions) -> dict[str, str]:
    """The Secret's values in a file rendered before (same name and namespace), so that
    rendering again into it keeps the tokens and the database password; {} if none."""
    from harmonia.orchestration.kubernetes import KubernetesError, read_manifests

    if path is None or not path.exists():
        return {}
    try:
        documents = read_manifests(path)
    except KubernetesError:
        return {}
    for document in documents:
        metadata = document.get("metadata") or {}
        if (
            document.get("kind") == "Secret"
            and metadata.get("name") == options.secret_name
            and metadata.get("namespace") == options.namespace
        ):
            values = document.get("stringData") or {}
            return {str(k): str(v) for k, v in values.items() if isinstance(v, str)}
    return {}


def _secrets(
    kept: dict[str, str], options: SelfOptions, database_url: str | None
) -> tuple[SelfSecrets, list[str]]:
    """The Secret's values: kept from the file, else made up (what was made up is named)."""
    from harmonia.orchestration.kubernetes import SelfSecrets

    made: list[str] = []

    def value(key: str, what: str) -> str:
        if kept.get(key):
            return kept[key]
        made.append(what)
        return secrets.token_urlsafe(32)

    admin = value("admin-token", "an admin token")
    registration = value("registration-key", "a registration key")
    password = value("postgres-password", "a PostgreSQL password") if options.with_postgres else ""
    url = "" if options.with_postgres else (database_url or kept.get("database-url", ""))
    return SelfSecrets(admin, registration, url, password), made


def deploy_self(
    domain: Annotated[
        str | None,
        typer.Option(help="the domain whose target (namespace, context) Harmonia serves"),
    ] = None,
    namespace: Annotated[
        str | None,
        typer.Option(help=f"namespace (default: the domain's, else {DEFAULT_NAMESPACE!r})"),
    ] = None,
    replicas: Annotated[int, typer.Option(min=1, help="server replicas")] = 2,
    image: Annotated[
        str | None,
        typer.Option(help="the server's image (default: harmonia:<version>)"),
    ] = None,
    with_postgres: Annotated[
        bool,
        typer.Option("--with-postgres", help="a PostgreSQL StatefulSet for a domain without one"),
    ] = False,
    database_url: Annotated[
        str | None,
        typer.Option(help="an external PostgreSQL's URL (instead of --with-postgres)"),
    ] = None,
    postgres_storage: Annotated[
        str, typer.Option(help="the PostgreSQL volume's size (with --with-postgres)")
    ] = "10Gi",
    artifact_store: Annotated[
        str, typer.Option(help="where the replicas share artifacts: s3://bucket/prefix")
    ] = "",
    with_secret: Annotated[
        bool,
        typer.Option(
            "--secret/--no-secret",
            help="render the Secret (tokens, database URL), or only refer to an existing one",
        ),
    ] = True,
    out: Annotated[
        Path | None,
        typer.Option(help="file to write, private (default: stdout); its Secret is kept"),
    ] = None,
) -> None:
    """Render Harmonia's own server for a domain as Kubernetes manifests, validated against
    the schemas: Namespace, Secret, PostgreSQL (--with-postgres), the server's Deployment
    with /readyz and /healthz probes, its Service, a PodDisruptionBudget.

    Apply them with `harmonia deploy apply --manifests FILE --domain D`. Rendering into the
    same file again keeps the Secret's values (made up the first time). Exits 2 on invalid
    input.
    """
    from harmonia.orchestration.kubernetes import (
        KubernetesError,
        SelfOptions,
        dump_manifests,
        render_harmonia,
        validate_manifests,
        write_manifests,
    )
    from harmonia.settings import Settings

    err = stderr_console()
    settings = Settings()
    context: str | None = None
    if domain is not None:
        found = domain_target(err, domain)
        context = found.kube_context
        namespace = namespace or found.namespace
        if namespace is None:
            err.print(f"error: domain {domain!r} has no namespace; give --namespace", markup=False)
            raise typer.Exit(EXIT_INVALID)
    namespace = namespace or DEFAULT_NAMESPACE
    if with_postgres and database_url:
        err.print("error: give --with-postgres or --database-url, not both", markup=False)
        raise typer.Exit(EXIT_INVALID)
    registry = settings.kube_image_registry.rstrip("/")
    options_kwargs: dict[str, Any] = {}
    if image is not None:
        options_kwargs["image"] = image
    elif registry:
        options_kwargs["image"] = f"{registry}/{SelfOptions().image}"
    options = SelfOptions(
        namespace=namespace,
        domain=domain,
        replicas=replicas,
        with_postgres=with_postgres,
        postgres_storage=postgres_storage,
        image_pull_policy=settings.kube_image_pull_policy,
        create_namespace=namespace != "default",
        artifact_store=artifact_store,
        kubernetes_version=settings.kube_version or SelfOptions().kubernetes_version,
        **options_kwargs,
    )
    made: list[str] = []
    values = None
    if with_secret:
        values, made = _secrets(_kept_secret(out, options), options, database_url)
    elif database_url:
        err.print("note: --database-url goes into the Secret, which --no-secret leaves out")
    try:
        rendered = render_harmonia(options, values)
        validate_manifests(rendered.documents, options.kubernetes_version)
    except (KubernetesError, ValueError) as error:
        err.print(f"error: {error}", markup=False)
        raise typer.Exit(EXIT_INVALID) from None
    except ModuleNotFoundError as error:
        if error.name != "kubernetes_validate":
            raise
        err.print(f"error: this needs {error.name}: pip install 'harmonia[server]'")
        raise typer.Exit(EXIT_INVALID) from None
    for note in rendered.notes:
        err.print(f"note: {note}", markup=False)
    kinds = ", ".join(f"{d['kind']}/{d['metadata']['name']}" for d in rendered.documents)
    if out is None:
        typer.echo(dump_manifests(rendered.documents, HEADER), nl=False)
        err.print(f"rendered {kinds}", markup=False)
    else:
        write_manifests(rendered.documents, out, HEADER, private=values is not None)
        err.print(f"wrote {kinds} to {out}", markup=False)
    if made:
        err.print(f"made up {', '.join(made)} (in the Secret {options.secret_name!r})")
    where = f" --domain {domain}" if domain is not None else f" --namespace {namespace}"
    if domain is not None and context is None:
        where += " (the domain names no context: the kubeconfig's current one)"
    err.print(f"apply with: harmonia deploy apply --manifests {out or 'FILE'}{where}", markup=False)
