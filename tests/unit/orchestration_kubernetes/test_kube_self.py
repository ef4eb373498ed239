"""Harmonia's own manifests (`render_harmonia`): valid against the Kubernetes schemas, and
wired together as a cluster needs them (selectors, the Secret, probes, the namespace)."""

from __future__ import annotations

from typing import Any

import pytest

from harmonia.orchestration.kubernetes import (
    DOMAIN_LABEL,
    SECRET_KEYS,
    SELF_PART_OF,
    RenderError,
    SelfOptions,
    SelfSecrets,
    dump_manifests,
    render_harmonia,
    validate_manifests,
)
from harmonia.orchestration.kubernetes._self import LIVENESS_PATH, READINESS_PATH

EXTERNAL = "postgresql+psycopg://harmonia:pw@db.example:5432/harmonia"
SECRETS = SelfSecrets(admin_token="admin", registration_key="reg", database_url=EXTERNAL)
WITH_POSTGRES = SelfSecrets(admin_token="admin", registration_key="reg", postgres_password="p/w")


def _one(documents: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [
        d
        for d in documents
        if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]
    assert len(found) == 1, [f"{d['kind']}/{d['metadata']['name']}" for d in documents]
    return found[0]


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _pods(workload: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return labels


def _containers(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        container
        for d in documents
        if d["kind"] in ("Deployment", "StatefulSet")
        for container in d["spec"]["template"]["spec"]["containers"]
    ]


@pytest.fixture(
    params=[
        pytest.param((SelfOptions(namespace="vendor", domain="vendor"), SECRETS), id="external"),
        pytest.param(
            (
                SelfOptions(
                    namespace="op-prod",
                    domain="operator-production",
                    with_postgres=True,
                    replicas=3,
                    storage_class="fast-ssd",
                ),
                WITH_POSTGRES,
            ),
            id="with-postgres",
        ),
        pytest.param((SelfOptions(namespace="lab"), None), id="existing-secret"),
    ]
)
def case(request: pytest.FixtureRequest) -> tuple[SelfOptions, list[dict[str, Any]]]:
    options, secrets = request.param
    return options, render_harmonia(options, secrets).documents


def test_every_rendering_is_valid_against_the_schemas(
    case: tuple[SelfOptions, list[dict[str, Any]]],
) -> None:
    options, documents = case
    validate_manifests(documents, options.kubernetes_version)


def test_objects_come_in_the_order_to_apply_them() -> None:
    documents = render_harmonia(SelfOptions(namespace="v", with_postgres=True), WITH_POSTGRES)
    assert [f"{d['kind']}/{d['metadata']['name']}" for d in documents.documents] == [
        "Namespace/v",
        "Secret/harmonia",
        "StatefulSet/harmonia-postgres",
        "Service/harmonia-postgres",
        "Deployment/harmonia",
        "Service/harmonia",
        "PodDisruptionBudget/harmonia",
    ]
    external = render_harmonia(SelfOptions(namespace="v"), SECRETS).documents
    assert [d["kind"] for d in external] == [
        "Namespace",
        "Secret",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
    ]


def test_the_service_selects_the_deployments_pods_and_only_them(
    case: tuple[SelfOptions, list[dict[str, Any]]],
) -> None:
    options, documents = case
    deployment = _one(documents, "Deployment")
    service = _one(documents, "Service", options.name)
    assert _selects(service["spec"]["selector"], _pods(deployment))
    assert _selects(deployment["spec"]["selector"]["matchLabels"], _pods(deployment))
    assert deployment["spec"]["replicas"] == options.replicas
    # the port the Service forwards to is the container's, by name
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    (port,) = container["ports"]
    assert service["spec"]["ports"][0]["targetPort"] == port["name"] == "http"
    assert port["containerPort"] == options.port
    if options.with_postgres:
        database = _one(documents, "StatefulSet")
        assert not _selects(service["spec"]["selector"], _pods(database))


def test_the_disruption_budget_selects_the_servers_pods(
    case: tuple[SelfOptions, list[dict[str, Any]]],
) -> None:
    _, documents = case
    budget = _one(documents, "PodDisruptionBudget")
    deployment = _one(documents, "Deployment")
    assert _selects(budget["spec"]["selector"]["matchLabels"], _pods(deployment))
    assert budget["spec"]["maxUnavailable"] == 1  # a drain is never blocked for good
    for database in [d for d in documents if d["kind"] == "StatefulSet"]:
        assert not _selects(budget["spec"]["selector"]["matchLabels"], _pods(database))


def test_the_postgres_service_governs_the_statefulset() -> None:
    options = SelfOptions(namespace="op", with_postgres=True)
    rendered = render_harmonia(options, WITH_POSTGRES)
    database = _one(rendered.documents, "StatefulSet")
    service = _one(rendered.documents, "Service", "harmonia-postgres")
    assert database["spec"]["serviceName"] == service["metadata"]["name"]
    assert service["spec"]["clusterIP"] == "None"
    assert _selects(service["spec"]["selector"], _pods(database))
    (claim,) = database["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "10Gi"
    assert database["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Retain"
    # the URL in the Secret reaches that Service, with the password quoted
    url = rendered.secret_values["database-url"]
    assert url == "postgresql+psycopg://harmonia:p%2Fw@harmonia-postgres.op.svc:5432/harmonia"


def test_the_secret_is_referenced_by_name_with_keys_it_holds(
    case: tuple[SelfOptions, list[dict[str, Any]]],
) -> None:
    options, documents = case
    references = [
        entry["valueFrom"]["secretKeyRef"]
        for container in _containers(documents)
        for entry in container["env"]
        if "secretKeyRef" in entry.get("valueFrom", {})
    ]
    assert {r["name"] for r in references} == {options.secret_name}
    keys = {r["key"] for r in references}
    expected = {"admin-token", "database-url", "registration-key"}
    assert keys == (expected | {"postgres-password"} if options.with_postgres else expected)
    assert keys <= set(SECRET_KEYS)
    optional = {r["key"] for r in references if r.get("optional")}
    assert optional == {"registration-key"}
    secrets = [d for d in documents if d["kind"] == "Secret"]
    if secrets:  # rendered: it holds every key referenced
        (secret,) = secrets
        assert secret["metadata"]["name"] == options.secret_name
        assert keys <= set(secret["stringData"])
    server = _one(documents, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    variables = {e["name"]: e for e in server["env"]}
    assert variables["HARMONIA_ADMIN_TOKEN"]["valueFrom"]["secretKeyRef"]["key"] == "admin-token"
    assert variables["HARMONIA_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["key"] == (
        "database-url"
    )
    assert all("value" not in variables[v] for v in SECRET_KEYS.values() if v is not None)


def test_probes_call_healthz_and_readyz_on_the_named_port(
    case: tuple[SelfOptions, list[dict[str, Any]]],
) -> None:
    _, documents = case
    server = _one(documents, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert (LIVENESS_PATH, READINESS_PATH) == ("/healthz", "/readyz")
    assert server["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert server["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert server["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert server["resources"]["requests"] == {"cpu": "250m", "memory": "512Mi"}
    assert server["resources"]["limits"] == {"memory": "1Gi"}


def test_every_object_is_in_the_domains_namespace_and_labelled_with_it(
    case: tuple[SelfOptions, list[dict[str, Any]]],
) -> None:
    options, documents = case
    namespace = _one(documents, "Namespace")
    assert namespace["metadata"]["name"] == options.namespace
    assert "namespace" not in namespace["metadata"]  # cluster-scoped
    for document in documents:
        labels = document["metadata"]["labels"]
        assert labels.get(DOMAIN_LABEL) == options.domain
        assert labels["app.kubernetes.io/part-of"] == SELF_PART_OF
        if document["kind"] != "Namespace":
            assert document["metadata"]["namespace"] == options.namespace


def test_one_render_per_domain_differs_only_where_the_domain_does() -> None:
    vendor = render_harmonia(SelfOptions(namespace="vendor", domain="vendor"), SECRETS)
    staging = render_harmonia(
        SelfOptions(namespace="op-staging", domain="operator-staging"), SECRETS
    )
    assert {d["metadata"].get("namespace") for d in vendor.documents} == {None, "vendor"}
    assert {d["metadata"].get("namespace") for d in staging.documents} == {None, "op-staging"}
    assert dump_manifests(vendor.documents) == dump_manifests(
        render_harmonia(SelfOptions(namespace="vendor", domain="vendor"), SECRETS).documents
    )  # the same inputs, the same bytes


def test_the_default_namespace_is_not_rendered_as_an_object() -> None:
    options = SelfOptions(namespace="default", create_namespace=False)
    documents = render_harmonia(options, SECRETS).documents
    assert "Namespace" not in {d["kind"] for d in documents}
    validate_manifests(documents)


def test_without_secrets_the_secret_is_a_note_not_an_object() -> None:
    rendered = render_harmonia(SelfOptions(namespace="lab", with_postgres=True))
    assert "Secret" not in {d["kind"] for d in rendered.documents}
    assert rendered.secret_values == {}
    assert any(
        "'harmonia' is not rendered" in n and "postgres-password" in n for n in rendered.notes
    )


def test_several_replicas_without_an_artifact_store_get_a_note() -> None:
    notes = render_harmonia(SelfOptions(namespace="v", replicas=2), SECRETS).notes
    assert any("artifact store" in n for n in notes)
    shared = SelfOptions(namespace="v", replicas=2, artifact_store="s3://models/harmonia")
    rendered = render_harmonia(shared, SECRETS)
    assert not any("artifact store" in n for n in rendered.notes)
    server = _one(rendered.documents, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "HARMONIA_ARTIFACT_STORE", "value": "s3://models/harmonia"} in server["env"]


@pytest.mark.parametrize(
    ("options", "secrets", "field", "reason"),
    [
        (SelfOptions(), SelfSecrets(admin_token="a"), "secrets.database_url", "is empty"),
        (
            SelfOptions(),
            SelfSecrets(admin_token="a", database_url="sqlite:///x.db"),
            "secrets.database_url",
            "SQLite lives in one pod",
        ),
        (
            SelfOptions(with_postgres=True),
            SelfSecrets(admin_token="a", database_url=EXTERNAL, postgres_password="p"),
            "secrets.database_url",
            "so is with_postgres",
        ),
        (
            SelfOptions(with_postgres=True),
            SelfSecrets(admin_token="a"),
            "secrets.postgres_password",
            "needs a password",
        ),
        (
            SelfOptions(),
            SelfSecrets(admin_token="", database_url=EXTERNAL),
            "secrets.admin_token",
            "is empty",
        ),
        (SelfOptions(namespace="Not_A_Label"), SECRETS, "namespace", "DNS-1123 label"),
        (SelfOptions(name="1harmonia"), SECRETS, "name", "DNS-1035 label"),
        (SelfOptions(replicas=0), SECRETS, "replicas", "at least 1"),
        (SelfOptions(memory_limit="lots"), SECRETS, "memory_limit", "not a Kubernetes quantity"),
        (SelfOptions(domain="a b"), SECRETS, "domain", "label value"),
    ],
)
def test_what_cannot_be_rendered_is_refused_naming_the_field(
    options: SelfOptions, secrets: SelfSecrets, field: str, reason: str
) -> None:
    with pytest.raises(RenderError) as caught:
        render_harmonia(options, secrets)
    assert [issue.path for issue in caught.value.issues] == [field]
    assert reason in caught.value.issues[0].reason
    assert "cannot render Harmonia's manifests" in str(caught.value)
