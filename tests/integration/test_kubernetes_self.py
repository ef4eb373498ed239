"""``harmonia deploy self``: Harmonia's own manifests rendered per domain (the target read
from the store's domains), their probes aimed at routes the server has, and ``deploy apply
--domain`` sending them to the domain's context: a fake API server on loopback (no
Kubernetes cluster runs here; see test_kubernetes_apply.py)."""

from __future__ import annotations

import socket
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_kubernetes_apply import TOKEN, FakeApiServer
from typer.testing import CliRunner

from harmonia.cli import app
from harmonia.orchestration.kubernetes import (
    SelfOptions,
    SelfSecrets,
    parse_manifests,
    read_manifests,
    render_harmonia,
    validate_manifests,
)
from harmonia.server.app import create_app
from harmonia.store import Store, sqlite_url


@pytest.fixture(autouse=True)
def _settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory without the checkout's .env, a data directory of its own, no
    kubeconfig unless a test writes one."""
    monkeypatch.chdir(tmp_path)
    for name in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "HARMONIA_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    for name in ("KUBE_CONTEXT", "KUBE_NAMESPACE", "KUBE_IMAGE_REGISTRY", "ADMIN_TOKEN"):
        monkeypatch.delenv(f"HARMONIA_{name}", raising=False)
    monkeypatch.setenv("HARMONIA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HARMONIA_KUBE_CONFIG", str(tmp_path / "kubeconfig"))
    return tmp_path


@pytest.fixture
def domains(tmp_path: Path) -> Iterator[Store]:
    """The store the settings name, with two domains of an operator and one of a vendor."""
    store = Store(sqlite_url(tmp_path / "data"))
    store.create_org("atos", by="admin")
    store.create_org("operator", by="admin")
    store.create_domain("vendor", "atos", kube_context="vendor-ctx", namespace="vendor-ns", by="a")
    store.create_domain(
        "operator-production", "operator", kube_context="prod-ctx", namespace="op-prod", by="a"
    )
    store.create_domain("operator-staging", "operator", by="a")  # no target
    try:
        yield store
    finally:
        store.close()


def _invoke(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args))
    return result


def test_the_probes_call_routes_of_the_servers_openapi(tmp_path: Path) -> None:
    documents = render_harmonia(
        SelfOptions(namespace="v"), SelfSecrets("a", database_url="postgresql://h/db")
    ).documents
    (deployment,) = [d for d in documents if d["kind"] == "Deployment"]
    (server,) = deployment["spec"]["template"]["spec"]["containers"]
    probes = [server[p]["httpGet"]["path"] for p in ("startupProbe", "livenessProbe")]
    probes.append(server["readinessProbe"]["httpGet"]["path"])
    store = Store(sqlite_url(tmp_path / "server"))
    try:
        paths = create_app(store, "admin").openapi()["paths"]
    finally:
        store.close()
    for path in probes:
        assert "get" in paths[path], path
        assert "200" in paths[path]["get"]["responses"]
    assert "503" in paths["/readyz"]["get"]["responses"]


def test_render_writes_valid_private_manifests_and_keeps_the_secret(tmp_path: Path) -> None:
    first = _invoke("deploy", "self", "--with-postgres", "--replicas", "3", "--out", "m.yaml")
    assert first.exit_code == 0, first.output
    path = tmp_path / "m.yaml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # it holds the Secret's values
    documents = read_manifests(path)
    validate_manifests(documents)
    assert {d["metadata"].get("namespace") for d in documents} == {None, "harmonia"}
    (secret,) = [d for d in documents if d["kind"] == "Secret"]
    assert "made up an admin token, a registration key, a PostgreSQL password" in first.stderr
    assert "apply with: harmonia deploy apply --manifests m.yaml --namespace harmonia" in (
        first.stderr
    )

    again = _invoke("deploy", "self", "--with-postgres", "--replicas", "3", "--out", "m.yaml")
    assert again.exit_code == 0, again.output
    assert "made up" not in again.stderr
    (kept,) = [d for d in read_manifests(path) if d["kind"] == "Secret"]
    assert kept["stringData"] == secret["stringData"]  # same tokens, same database password


def test_render_to_stdout_with_an_external_database(tmp_path: Path) -> None:
    url = "postgresql+psycopg://harmonia:pw@db.example:5432/harmonia"
    result = _invoke(
        "deploy", "self", "--database-url", url, "--image", "registry.lab/harmonia:dev"
    )
    assert result.exit_code == 0, result.output
    documents = parse_manifests(result.stdout)
    validate_manifests(documents)
    assert [d["kind"] for d in documents] == [
        "Namespace",
        "Secret",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
    ]
    (secret,) = [d for d in documents if d["kind"] == "Secret"]
    assert secret["stringData"]["database-url"] == url
    (deployment,) = [d for d in documents if d["kind"] == "Deployment"]
    assert deployment["spec"]["replicas"] == 2
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "registry.lab/harmonia:dev"


def test_render_for_a_domain_takes_its_namespace_from_the_store(domains: Store) -> None:
    result = _invoke("deploy", "self", "--domain", "vendor", "--with-postgres")
    assert result.exit_code == 0, result.output
    documents = parse_manifests(result.stdout)
    validate_manifests(documents)
    assert {d["metadata"].get("namespace") for d in documents} == {None, "vendor-ns"}
    assert all(d["metadata"]["labels"]["harmonia.io/domain"] == "vendor" for d in documents)
    assert "apply with: harmonia deploy apply --manifests FILE --domain vendor" in result.stderr
    secret = next(d for d in documents if d["kind"] == "Secret")
    assert "@harmonia-postgres.vendor-ns.svc:5432/" in secret["stringData"]["database-url"]


def test_render_for_a_domain_without_a_namespace_or_unknown_exits_2(domains: Store) -> None:
    staging = _invoke("deploy", "self", "--domain", "operator-staging", "--with-postgres")
    assert staging.exit_code == 2
    assert "domain 'operator-staging' has no namespace; give --namespace" in staging.output
    given = _invoke(
        "deploy", "self", "--domain", "operator-staging", "--namespace", "op-stg", "--no-secret"
    )
    assert given.exit_code == 0, given.output
    assert "(the domain names no context" in given.stderr
    assert "Secret 'harmonia' is not rendered" in given.stderr
    unknown = _invoke("deploy", "self", "--domain", "nowhere", "--with-postgres")
    assert unknown.exit_code == 2
    assert "no domain named 'nowhere'" in unknown.output


def test_a_domain_without_a_store_exits_2_and_creates_none(tmp_path: Path) -> None:
    result = _invoke("deploy", "self", "--domain", "vendor", "--with-postgres")
    assert result.exit_code == 2
    assert "there is no store at" in result.output
    assert not (tmp_path / "data" / "harmonia.db").exists()


def test_what_cannot_be_rendered_exits_2_naming_the_field() -> None:
    sqlite = _invoke("deploy", "self", "--database-url", "sqlite:///h.db")
    assert sqlite.exit_code == 2
    assert "secrets.database_url: is a sqlite URL" in sqlite.output
    nothing = _invoke("deploy", "self")
    assert nothing.exit_code == 2
    assert "secrets.database_url: is empty" in nothing.output
    both = _invoke("deploy", "self", "--with-postgres", "--database-url", "postgresql://h/d")
    assert both.exit_code == 2
    assert "not both" in both.output


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _kubeconfig(path: Path, contexts: dict[str, str], current: str) -> None:
    """A kubeconfig with one context per (name, server)."""
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": n, "cluster": {"server": s}} for n, s in contexts.items()],
                "users": [{"name": "u", "user": {"token": TOKEN}}],
                "contexts": [{"name": n, "context": {"cluster": n, "user": "u"}} for n in contexts],
                "current-context": current,
            }
        )
    )


def test_apply_for_a_domain_reaches_its_context_and_namespace(
    tmp_path: Path, domains: Store
) -> None:
    with FakeApiServer() as fake:
        # the current context points at no cluster: only the domain's context answers
        _kubeconfig(
            tmp_path / "kubeconfig",
            {
                "vendor-ctx": f"http://127.0.0.1:{fake.port}",
                "elsewhere": f"http://127.0.0.1:{_closed_port()}",
            },
            current="elsewhere",
        )
        rendered = _invoke(
            "deploy", "self", "--domain", "vendor", "--with-postgres", "--out", "m.yaml"
        )
        assert rendered.exit_code == 0, rendered.output
        applied = _invoke("deploy", "apply", "--manifests", "m.yaml", "--domain", "vendor")
        assert applied.exit_code == 0, applied.output
        again = _invoke("deploy", "apply", "--manifests", "m.yaml", "--domain", "vendor", "--prune")
        assert again.exit_code == 0, again.output

    first = fake.patches[:7]
    assert [r.path for r in first] == [
        "/api/v1/namespaces/vendor-ns",
        "/api/v1/namespaces/vendor-ns/secrets/harmonia",
        "/apis/apps/v1/namespaces/vendor-ns/statefulsets/harmonia-postgres",
        "/api/v1/namespaces/vendor-ns/services/harmonia-postgres",
        "/apis/apps/v1/namespaces/vendor-ns/deployments/harmonia",
        "/api/v1/namespaces/vendor-ns/services/harmonia",
        "/apis/policy/v1/namespaces/vendor-ns/poddisruptionbudgets/harmonia",
    ]
    assert all(r.query.get("fieldManager") == ["harmonia"] for r in fake.patches)
    assert "metadata" in first[0].body and "namespace" not in first[0].body["metadata"]
    assert applied.stdout.splitlines() == [
        "Namespace/vendor-ns created",
        "Secret/harmonia created in vendor-ns",
        "StatefulSet/harmonia-postgres created in vendor-ns",
        "Service/harmonia-postgres created in vendor-ns",
        "Deployment/harmonia created in vendor-ns",
        "Service/harmonia created in vendor-ns",
        "PodDisruptionBudget/harmonia created in vendor-ns",
    ]
    # pruning Harmonia's own objects deletes none of them (a Secret, a database never)
    assert not [r for r in fake.requests if r.method == "DELETE"]
    assert "pruned" not in again.stdout
    assert len(fake.objects) == 7


def test_apply_refuses_manifests_of_another_domains_namespace(
    tmp_path: Path, domains: Store
) -> None:
    rendered = _invoke("deploy", "self", "--domain", "vendor", "--with-postgres", "--out", "m.yaml")
    assert rendered.exit_code == 0, rendered.output
    with FakeApiServer() as fake:
        _kubeconfig(
            tmp_path / "kubeconfig", {"prod-ctx": f"http://127.0.0.1:{fake.port}"}, "prod-ctx"
        )
        refused = _invoke(
            "deploy", "apply", "--manifests", "m.yaml", "--domain", "operator-production"
        )
    assert refused.exit_code == 2
    assert "is 'vendor-ns', but 'op-prod' was asked for" in refused.output
    assert fake.requests == []
