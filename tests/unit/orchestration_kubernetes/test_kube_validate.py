"""Validation against the Kubernetes schemas and the checks the schemas leave out: each
problem names the document and the field."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from harmonia.orchestration import ObjectiveValue, Placement, Plan, ServiceRequirement
from harmonia.orchestration.kubernetes import ManifestError, render_plan, validate_manifests


@pytest.fixture
def documents() -> list[dict[str, Any]]:
    plan = Plan(
        placer="first-fit",
        status="heuristic",
        objective=ObjectiveValue(name="nodes", value=1, unit="nodes"),
        placements=[Placement(service="api", replica=0, node="n1")],
    )
    service = ServiceRequirement(name="api", cpu_millicores=250, memory_mib=128, ports=[80])
    return render_plan(plan, [service]).documents


def _issues(documents: list[dict[str, Any]]) -> list[str]:
    with pytest.raises(ManifestError) as caught:
        validate_manifests(documents)
    return [str(issue) for issue in caught.value.issues]


def test_rendered_documents_are_valid(documents: list[dict[str, Any]]) -> None:
    validate_manifests(documents)


def test_an_unknown_field_names_the_document_and_the_field(
    documents: list[dict[str, Any]],
) -> None:
    broken = copy.deepcopy(documents)
    broken[1]["spec"]["template"]["spec"]["containers"][0]["cpus"] = 2
    (issue,) = _issues(broken)
    assert issue.startswith("[1] Deployment/api-n1 spec.template.spec.containers.0: ")
    assert "'cpus' was unexpected" in issue


def test_a_wrong_type_names_the_field(documents: list[dict[str, Any]]) -> None:
    broken = copy.deepcopy(documents)
    broken[1]["spec"]["replicas"] = "two"
    (issue,) = _issues(broken)
    assert issue.startswith("[1] Deployment/api-n1 spec.replicas: ")


def test_a_service_without_a_selector_is_refused(documents: list[dict[str, Any]]) -> None:
    broken = copy.deepcopy(documents)
    del broken[0]["spec"]["selector"]  # what ROHE wrote
    assert _issues(broken) == [
        "[0] Service/api spec.selector: is missing: the Service selects no pods"
    ]


def test_a_deployment_selector_must_match_its_pod_template(
    documents: list[dict[str, Any]],
) -> None:
    broken = copy.deepcopy(documents)
    broken[1]["spec"]["selector"]["matchLabels"]["harmonia.io/deployment"] = "other"
    (issue,) = _issues(broken)
    assert issue.startswith("[1] Deployment/api-n1 spec.selector.matchLabels: does not match")


def test_names_and_structure_are_checked_before_the_schemas(
    documents: list[dict[str, Any]],
) -> None:
    broken = copy.deepcopy(documents)
    broken[0]["metadata"]["name"] = "1api"
    broken[1]["metadata"]["name"] = "Api_N1"
    broken[1]["metadata"]["namespace"] = "Prod"
    del broken[1]["kind"]
    assert _issues([*broken, ["not", "a", "mapping"]]) == [  # type: ignore[list-item]
        "[0] Service/1api metadata.name: '1api' is not a DNS-1035 label",
        "[1] ?/Api_N1 kind: is missing or not a string",
        "[1] ?/Api_N1 metadata.name: 'Api_N1' is not a DNS-1123 subdomain",
        "[1] ?/Api_N1 metadata.namespace: 'Prod' is not a DNS-1123 label",
        "[2]: is a list, not a mapping",
    ]


def test_a_kind_without_a_schema_is_reported(documents: list[dict[str, Any]]) -> None:
    odd = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    (issue,) = _issues([odd])
    assert issue.startswith("[0] Widget/w: Couldn't find schema for kind Widget")


def test_an_unsupported_kubernetes_version_is_a_clear_error(
    documents: list[dict[str, Any]],
) -> None:
    with pytest.raises(ValueError, match=r"has no schemas for Kubernetes 9\.99"):
        validate_manifests(documents, "9.99")
