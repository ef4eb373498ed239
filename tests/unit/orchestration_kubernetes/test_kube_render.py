"""Rendering a plan as Deployments and Services: valid against the schemas, selectors that
match, one Deployment per (service, node) pinned there, resources, environment, names."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest
from kube_rohe_inputs import rohe_nodes as _rohe_nodes
from kube_rohe_inputs import rohe_plan as _rohe_plan
from kube_rohe_inputs import rohe_services as _rohe_services

from harmonia.orchestration import (
    BestFitPlacer,
    Node,
    ObjectiveValue,
    Placement,
    Plan,
    ServiceRequirement,
)
from harmonia.orchestration.kubernetes import (
    DEPLOYMENT_LABEL,
    HOSTNAME_LABEL,
    NAME_LABEL,
    RenderError,
    RenderOptions,
    dump_manifests,
    is_dns_label,
    render_plan,
    validate_manifests,
)
from harmonia.orchestration.kubernetes._names import is_dns1035_label

Doc = dict[str, Any]


@pytest.fixture
def rohe_nodes() -> list[Node]:
    return _rohe_nodes()


@pytest.fixture
def rohe_services() -> list[ServiceRequirement]:
    return _rohe_services()


@pytest.fixture
def rohe_plan() -> Plan:
    return _rohe_plan()


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def _pod_labels(deployment: Doc) -> dict[str, str]:
    return dict(deployment["spec"]["template"]["metadata"]["labels"])


def _pinned_to(deployment: Doc) -> list[str]:
    affinity = deployment["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]
    terms = affinity["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert len(terms) == 1 and len(terms[0]["matchExpressions"]) == 1
    expression = terms[0]["matchExpressions"][0]
    assert (expression["key"], expression["operator"]) == (HOSTNAME_LABEL, "In")
    return list(expression["values"])


def _container(deployment: Doc) -> Doc:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def _plan(*placed: tuple[str, str]) -> Plan:
    counts: Counter[str] = Counter()
    placements = []
    for service, node in placed:
        placements.append(Placement(service=service, replica=counts[service], node=node))
        counts[service] += 1
    return Plan(
        placer="first-fit",
        status="heuristic",
        objective=ObjectiveValue(name="nodes", value=1, unit="nodes"),
        placements=placements,
    )


def test_rohe_like_manifests_are_valid_against_the_kubernetes_schemas(
    rohe_plan: Plan, rohe_services: list[ServiceRequirement], rohe_nodes: list[Node]
) -> None:
    rendered = render_plan(rohe_plan, rohe_services, rohe_nodes, RenderOptions(namespace="ml"))
    validate_manifests(rendered.documents)  # raises ManifestError otherwise
    assert len(rendered.of_kind("Service")) == 7
    # a Deployment per (service, node) group of the plan
    groups = {(p.service, p.node) for p in rohe_plan.placements}
    assert len(rendered.of_kind("Deployment")) == len(groups) == 9


def test_every_service_selects_the_pods_of_all_its_deployments_and_no_others(
    rohe_plan: Plan, rohe_services: list[ServiceRequirement]
) -> None:
    rendered = render_plan(rohe_plan, rohe_services)
    deployments = rendered.of_kind("Deployment")
    for service in rendered.of_kind("Service"):
        selector = service["spec"]["selector"]
        assert selector, "a Service with no selector routes to nothing"
        selected = [d for d in deployments if _selects(selector, _pod_labels(d))]
        assert selected, f"{service['metadata']['name']} selects no Deployment's pods"
        origin = service["metadata"]["annotations"]["harmonia.io/service"]
        assert {d["metadata"]["annotations"]["harmonia.io/service"] for d in selected} == {origin}
        assert {d["metadata"]["name"] for d in selected} == {
            d["metadata"]["name"]
            for d in deployments
            if d["metadata"]["labels"][NAME_LABEL] == selector[NAME_LABEL]
        }
    for deployment in deployments:  # each selected by exactly one Service
        matches = [
            s
            for s in rendered.of_kind("Service")
            if _selects(s["spec"]["selector"], _pod_labels(deployment))
        ]
        assert len(matches) == 1


def test_each_deployment_selects_its_own_pods_only(
    rohe_plan: Plan, rohe_services: list[ServiceRequirement]
) -> None:
    deployments = render_plan(rohe_plan, rohe_services).of_kind("Deployment")
    for deployment in deployments:
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector[DEPLOYMENT_LABEL] == deployment["metadata"]["name"]
        owners = [d for d in deployments if _selects(selector, _pod_labels(d))]
        assert owners == [deployment]  # overlapping selectors would fight over pods


def test_each_deployment_is_pinned_to_its_node_with_the_replicas_placed_there(
    rohe_plan: Plan, rohe_services: list[ServiceRequirement]
) -> None:
    rendered = render_plan(rohe_plan, rohe_services)
    planned = Counter((p.service, p.node) for p in rohe_plan.placements)
    rendered_counts = {
        (d["metadata"]["annotations"]["harmonia.io/service"], _pinned_to(d)[0]): d["spec"][
            "replicas"
        ]
        for d in rendered.of_kind("Deployment")
    }
    assert rendered_counts == dict(planned)
    xavier = [d for d in rendered.of_kind("Deployment") if _pinned_to(d) == ["Jetson_xavier_06"]]
    assert sorted((d["metadata"]["name"], d["spec"]["replicas"]) for d in xavier) == [
        ("bts-inference-service-jetson-xavier-06", 2),
        ("kpi-database-service-jetson-xavier-06", 1),
    ]


def test_a_nodes_hostname_label_pins_instead_of_its_inventory_name(
    rohe_plan: Plan, rohe_services: list[ServiceRequirement], rohe_nodes: list[Node]
) -> None:
    nodes = [
        n.model_copy(update={"labels": {HOSTNAME_LABEL: "xavier-6.lab"}})
        if n.name == "Jetson_xavier_06"
        else n
        for n in rohe_nodes
    ]
    rendered = render_plan(rohe_plan, rohe_services, nodes)
    pinned = {_pinned_to(d)[0] for d in rendered.of_kind("Deployment")}
    assert "xavier-6.lab" in pinned and "Jetson_xavier_06" not in pinned


def test_resources_come_from_the_requirement(
    rohe_plan: Plan, rohe_services: list[ServiceRequirement]
) -> None:
    rendered = render_plan(rohe_plan, rohe_services)
    by_name = {d["metadata"]["name"]: _container(d) for d in rendered.of_kind("Deployment")}
    web = by_name["object-detection-web-service-raspberrypi-01"]["resources"]
    # not CPU-sensitive: no CPU limit (it may burst); memory is limited to its request
    assert web == {"requests": {"cpu": "424m", "memory": "200Mi"}, "limits": {"memory": "200Mi"}}
    inference = by_name["object-detection-inference-service-jetson-nano-01"]["resources"]
    assert inference["requests"] == {"cpu": "500m", "memory": "600Mi", "nvidia.com/gpu": "1"}
    assert inference["limits"] == {"memory": "600Mi", "nvidia.com/gpu": "1"}


def test_a_cpu_sensitive_service_has_limits_equal_to_requests() -> None:
    service = ServiceRequirement(
        name="lstm", cpu_millicores=2000, memory_mib=1024, sensitivity=["cpu"]
    )
    (deployment,) = render_plan(_plan(("lstm", "n1")), [service]).of_kind("Deployment")
    resources = _container(deployment)["resources"]
    assert resources["limits"] == resources["requests"] == {"cpu": "2000m", "memory": "1024Mi"}


def test_accelerator_types_map_through_a_table_that_settings_extend() -> None:
    service = ServiceRequirement(
        name="npu-svc", cpu_millicores=100, accelerator={"type": "npu", "share": 50}
    )
    plan = _plan(("npu-svc", "n1"))
    with pytest.raises(RenderError, match=r"services\.0\.accelerator\.type: 'npu' has no"):
        render_plan(plan, [service])
    options = RenderOptions(accelerator_resources={"npu": "vendor.example/npu"})
    (deployment,) = render_plan(plan, [service], options=options).of_kind("Deployment")
    assert _container(deployment)["resources"]["limits"]["vendor.example/npu"] == "1"
    assert deployment["metadata"]["annotations"]["harmonia.io/accelerator-share"] == "50"


def test_pods_learn_their_name_namespace_node_and_ip_and_their_harmonia_identity(
    rohe_plan: Plan, rohe_services: list[ServiceRequirement]
) -> None:
    rendered = render_plan(rohe_plan, rohe_services, options=RenderOptions(app="rohe-demo"))
    deployment = rendered.of_kind("Deployment")[0]
    env = {e["name"]: e for e in _container(deployment)["env"]}
    assert {
        name: env[name]["valueFrom"]["fieldRef"]["fieldPath"]
        for name in ("POD_NAME", "POD_NAMESPACE", "NODE_NAME", "POD_IP")
    } == {
        "POD_NAME": "metadata.name",
        "POD_NAMESPACE": "metadata.namespace",
        "NODE_NAME": "spec.nodeName",
        "POD_IP": "status.podIP",
    }
    service = deployment["metadata"]["annotations"]["harmonia.io/service"]
    assert env["HARMONIA_APP"]["value"] == "rohe-demo"
    assert env["HARMONIA_SERVICE"]["value"] == service  # the name as Harmonia knows it
    assert env["HARMONIA_INSTANCE"]["value"] == "$(POD_NAME)"
    names = [e["name"] for e in _container(deployment)["env"]]
    assert names.index("POD_NAME") < names.index("HARMONIA_INSTANCE")  # expansion order


def test_every_name_is_a_dns_label_and_long_ones_stay_distinct() -> None:
    long = "a_very_long_service_name_for_object_detection_and_tracking"
    services = [
        ServiceRequirement(name=long + "_v1", cpu_millicores=100, ports=[80]),
        ServiceRequirement(name=long + "_v2", cpu_millicores=100, ports=[80]),
        ServiceRequirement(name="7-segment:reader+ocr", cpu_millicores=100, ports=[80]),
    ]
    node = "Jetson.Xavier.NX_06"
    plan = _plan((long + "_v1", node), (long + "_v2", node), ("7-segment:reader+ocr", node))
    rendered = render_plan(plan, services)
    validate_manifests(rendered.documents)
    names = [d["metadata"]["name"] for d in rendered.documents]
    assert len(set(names)) == len(names) == 6
    for document in rendered.documents:
        name = document["metadata"]["name"]
        assert is_dns_label(name) and len(name) <= 63
        if document["kind"] == "Service":
            assert is_dns1035_label(name)
    services_by_origin = {
        d["metadata"]["annotations"]["harmonia.io/service"]: d["metadata"]["name"]
        for d in rendered.of_kind("Service")
    }
    assert services_by_origin["7-segment:reader+ocr"] == "svc-7-segment-reader-ocr"
    for label in (d["metadata"]["labels"] for d in rendered.documents):
        assert all(len(v) <= 63 for v in label.values())


def test_names_that_sanitise_to_the_same_label_are_refused() -> None:
    services = [
        ServiceRequirement(name="od_web", cpu_millicores=100),
        ServiceRequirement(name="od.web", cpu_millicores=100),
    ]
    with pytest.raises(RenderError, match=r"rendered from both od\.web and od_web"):
        render_plan(_plan(("od_web", "n1"), ("od.web", "n1")), services)


def test_a_node_name_no_hostname_label_can_hold_is_refused() -> None:
    service = ServiceRequirement(name="api", cpu_millicores=100)
    with pytest.raises(RenderError, match=r"node 'rack:1'.*kubernetes.io/hostname"):
        render_plan(_plan(("api", "rack:1")), [service])


def test_a_placement_of_an_unknown_service_is_refused() -> None:
    with pytest.raises(RenderError, match=r"plan\.placements\.0\.service: names no service"):
        render_plan(_plan(("ghost", "n1")), [])


def test_invalid_labels_and_namespace_are_named() -> None:
    service = ServiceRequirement(
        name="api", cpu_millicores=100, labels={"team": "ml ops"}, node_selector={"a/b/c": "x"}
    )
    with pytest.raises(RenderError) as caught:
        render_plan(_plan(("api", "n1")), [service], options=RenderOptions(namespace="ML_Prod"))
    paths = [issue.path for issue in caught.value.issues]
    assert paths == ["namespace", "services.0.labels.team", "services.0.node_selector.a/b/c"]


def test_unplaced_replicas_are_not_rendered_but_reported(
    rohe_plan: Plan, rohe_services: list[ServiceRequirement]
) -> None:
    rendered = render_plan(rohe_plan, rohe_services)
    bts = [
        d
        for d in rendered.of_kind("Deployment")
        if d["metadata"]["annotations"]["harmonia.io/service"] == "bts_inference_service"
    ]
    assert sum(d["spec"]["replicas"] for d in bts) == 2  # of 3 asked for
    assert [(u.service, u.replica) for u in rendered.unplaced] == [("bts_inference_service", 2)]
    assert (
        "bts_inference_service: 1 replica(s) unplaced, not rendered "
        "(every node lacks 2500 MiB of memory)"
    ) in rendered.notes


def test_a_service_with_nothing_placed_gets_no_service_object() -> None:
    services = [
        ServiceRequirement(name="api", cpu_millicores=100, ports=[80]),
        ServiceRequirement(name="idle", cpu_millicores=100, ports=[80]),
    ]
    rendered = render_plan(_plan(("api", "n1")), services)
    assert [d["metadata"]["name"] for d in rendered.documents] == ["api", "api-n1"]
    assert "idle: no replica placed, nothing rendered" in rendered.notes


def test_the_order_and_the_yaml_are_stable_whatever_the_placement_order(
    rohe_plan: Plan, rohe_services: list[ServiceRequirement]
) -> None:
    shuffled = list(rohe_plan.placements)
    random.Random(7).shuffle(shuffled)
    again = rohe_plan.model_copy(update={"placements": shuffled})
    first = dump_manifests(render_plan(rohe_plan, rohe_services).documents)
    assert dump_manifests(render_plan(again, list(reversed(rohe_services))).documents) == first
    kinds = [d["kind"] for d in render_plan(rohe_plan, rohe_services).documents]
    assert kinds[:3] == ["Service", "Deployment", "Service"]  # per service: Service, Deployments


def test_ports_become_named_container_ports_and_service_ports_that_target_them(
    rohe_plan: Plan, rohe_services: list[ServiceRequirement]
) -> None:
    rendered = render_plan(rohe_plan, rohe_services)
    service = rendered.of_kind("Service")[0]
    assert service["spec"]["ports"] == [
        {"name": "port-4002", "port": 4002, "targetPort": "port-4002", "protocol": "TCP"},
        {"name": "port-4003", "port": 4003, "targetPort": "port-4003", "protocol": "TCP"},
    ]
    container_ports = _container(rendered.of_kind("Deployment")[0])["ports"]
    assert {p["name"] for p in container_ports} == {"port-4002", "port-4003"}


def test_a_service_without_ports_is_headless() -> None:
    rendered = render_plan(
        _plan(("worker", "n1")), [ServiceRequirement(name="worker", cpu_millicores=1)]
    )
    (service,) = rendered.of_kind("Service")
    assert service["spec"]["clusterIP"] == "None" and "ports" not in service["spec"]
    validate_manifests(rendered.documents)


def test_images_get_the_registry_unless_they_name_one() -> None:
    services = [
        ServiceRequirement(name="a", cpu_millicores=1, image="rdsea/od_web:2.0"),
        ServiceRequirement(name="b", cpu_millicores=1, image="ghcr.io/org/b:1"),
        ServiceRequirement(name="c", cpu_millicores=1),
    ]
    options = RenderOptions(image_registry="registry.lab:5000/", image_pull_policy="Always")
    rendered = render_plan(_plan(("a", "n"), ("b", "n"), ("c", "n")), services, options=options)
    images = [_container(d)["image"] for d in rendered.of_kind("Deployment")]
    assert images == [
        "registry.lab:5000/rdsea/od_web:2.0",
        "ghcr.io/org/b:1",
        "registry.lab:5000/c:latest",
    ]
    assert {_container(d)["imagePullPolicy"] for d in rendered.of_kind("Deployment")} == {"Always"}
    assert "c: no image given, using registry.lab:5000/c:latest" in rendered.notes


def test_a_plan_from_a_real_placer_renders_valid_manifests(
    rohe_nodes: list[Node], rohe_services: list[ServiceRequirement]
) -> None:
    plan = BestFitPlacer().place(rohe_nodes, rohe_services)
    rendered = render_plan(plan, rohe_services, rohe_nodes)
    validate_manifests(rendered.documents)
    placed = sum(d["spec"]["replicas"] for d in rendered.of_kind("Deployment"))
    assert placed == len(plan.placements)
    assert placed + len(rendered.unplaced) == sum(s.replicas for s in rohe_services)
