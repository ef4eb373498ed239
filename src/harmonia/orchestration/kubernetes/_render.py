"""A placement plan as Kubernetes objects (plain dicts): pure, no files, no cluster.

A replica placed on a node must run on that node, but a Deployment's replicas are
interchangeable: the scheduler puts them wherever they fit. So each (service, node) group
of the plan becomes one Deployment, ``replicas`` = the replicas placed on that node, pinned
there by required node affinity on ``kubernetes.io/hostname``. Each Deployment selects only
its own pods (``harmonia.io/deployment``); one Service per service selects the pods of all
of them through the label they share, ``app.kubernetes.io/name``.

>>> from harmonia.orchestration._plan import ObjectiveValue, Placement, Plan
>>> from harmonia.orchestration._services import ServiceRequirement
>>> plan = Plan(placer="first-fit", status="heuristic",
...             objective=ObjectiveValue(name="nodes", value=2, unit="nodes"),
...             placements=[Placement(service="detector", replica=r, node=n)
...                         for r, n in enumerate(["pi-1", "pi-1", "pi-2"])])
>>> service = ServiceRequirement(name="detector", cpu_millicores=500, memory_mib=600,
...                              replicas=3, image="rdsea/od_inf:2.0", ports=[4002])
>>> rendered = render_plan(plan, [service])
>>> [(d["metadata"]["name"], d["spec"].get("replicas")) for d in rendered.documents]
[('detector', None), ('detector-pi-1', 2), ('detector-pi-2', 1)]
>>> [d["kind"] for d in rendered.documents]
['Service', 'Deployment', 'Deployment']
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from harmonia.core.errors import Issue
from harmonia.orchestration._nodes import Node
from harmonia.orchestration._plan import Plan, Unplaced
from harmonia.orchestration._services import ServiceRequirement
from harmonia.orchestration.kubernetes._errors import RenderError
from harmonia.orchestration.kubernetes._names import (
    dns_label,
    is_dns_label,
    is_label_key,
    is_label_value,
    joined_label,
    port_name,
)
from harmonia.orchestration.kubernetes._options import PULL_POLICIES, RenderOptions

NAME_LABEL = "app.kubernetes.io/name"
PART_OF_LABEL = "app.kubernetes.io/part-of"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
#: the field manager of server-side apply and the ``managed-by`` label
MANAGER = "harmonia"
#: the label that tells one Deployment's pods from another's of the same service
DEPLOYMENT_LABEL = "harmonia.io/deployment"
HOSTNAME_LABEL = "kubernetes.io/hostname"
SERVICE_ANNOTATION = "harmonia.io/service"
NODE_ANNOTATION = "harmonia.io/node"
PLACER_ANNOTATION = "harmonia.io/placer"
SHARE_ANNOTATION = "harmonia.io/accelerator-share"

#: the downward API: what each pod learns about itself (the sdk's probe reports it)
DOWNWARD_ENV = (
    ("POD_NAME", "metadata.name"),
    ("POD_NAMESPACE", "metadata.namespace"),
    ("NODE_NAME", "spec.nodeName"),
    ("POD_IP", "status.podIP"),
)


@dataclass(frozen=True)
class Rendered:
    """The manifests of a plan, in a stable order (per service by name: its Service, then its
    Deployments by node), with the replicas left out because no node could take them."""

    documents: list[dict[str, Any]]
    unplaced: list[Unplaced] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        """The documents of one kind (``Deployment``, ``Service``), in order."""
        return [d for d in self.documents if d["kind"] == kind]


def render_plan(
    plan: Plan,
    services: Sequence[ServiceRequirement],
    nodes: Sequence[Node] = (),
    options: RenderOptions | None = None,
) -> Rendered:
    """Deployments and Services that run ``plan``; raise `RenderError` naming every input that
    cannot be written (nothing is returned half-rendered).

    ``nodes`` is optional: a node labelled ``kubernetes.io/hostname`` is pinned by that label's
    value instead of its name (for inventories whose names are not the cluster's).
    """
    options = options or RenderOptions()
    issues: list[Issue] = []
    if not is_dns_label(options.namespace):
        issues.append(Issue("namespace", f"{options.namespace!r} is not a DNS-1123 label"))
    if options.image_pull_policy not in PULL_POLICIES:
        issues.append(
            Issue(
                "image_pull_policy",
                f"is {options.image_pull_policy!r}, not one of {', '.join(PULL_POLICIES)}",
            )
        )
    index = {s.name: i for i, s in enumerate(services)}
    placed: dict[str, Counter[str]] = {}
    for i, placement in enumerate(plan.placements):
        if placement.service not in index:
            issues.append(
                Issue(f"plan.placements.{i}.service", f"names no service: {placement.service!r}")
            )
            continue
        placed.setdefault(placement.service, Counter())[placement.node] += 1
    hostnames = {n.name: n.labels.get(HOSTNAME_LABEL, n.name) for n in nodes}
    used = sorted({p.node for p in plan.placements})
    for node in used:
        if not is_label_value(hostnames.get(node, node)):
            issues.append(
                Issue(
                    f"plan.placements (node {node!r})",
                    f"{hostnames.get(node, node)!r} cannot be a {HOSTNAME_LABEL} value; label "
                    f"the node {HOSTNAME_LABEL}=<its hostname> in the inventory",
                )
            )

    documents: list[dict[str, Any]] = []
    notes: list[str] = []
    owners: dict[tuple[str, str], str] = {}  # (kind, name) -> what it was rendered from
    for service in sorted(services, key=lambda s: s.name):
        where = f"services.{index[service.name]}"
        counts = placed.get(service.name)
        if not counts:
            notes.append(f"{service.name}: no replica placed, nothing rendered")
            continue
        issues += _label_issues(f"{where}.labels", service.labels)
        issues += _label_issues(f"{where}.node_selector", service.node_selector)
        resource = None
        if service.accelerator is not None:
            resource = options.resource_for(service.accelerator.type)
            if resource is None:
                issues.append(
                    Issue(
                        f"{where}.accelerator.type",
                        f"{service.accelerator.type!r} has no extended resource; map it in "
                        "kube_accelerator_resources",
                    )
                )
        image, made_up = _image(service, options)
        if made_up:
            notes.append(f"{service.name}: no image given, using {image}")
        shape = _Shape(service, options, image, resource)
        docs = [_service(shape)]
        for node in sorted(counts):
            hostname = hostnames.get(node, node)
            docs.append(_deployment(shape, node, hostname, counts[node], plan.placer))
        for doc in docs:
            key = (doc["kind"], doc["metadata"]["name"])
            origin = f"{service.name}" + (
                f" on {doc['metadata']['annotations'][NODE_ANNOTATION]}"
                if doc["kind"] == "Deployment"
                else ""
            )
            if key in owners:
                issues.append(
                    Issue(
                        where,
                        f"{key[0]} name {key[1]!r} is rendered from both {owners[key]} "
                        f"and {origin}; rename one of them",
                    )
                )
            owners[key] = origin
        documents += docs
    if issues:
        raise RenderError(issues)
    unplaced = list(plan.unplaced)
    for name, count in Counter(u.service for u in unplaced).items():
        reason = next(u.reason for u in unplaced if u.service == name)
        notes.append(f"{name}: {count} replica(s) unplaced, not rendered ({reason})")
    return Rendered(documents, unplaced, notes)


@dataclass(frozen=True)
class _Shape:
    """What every object of one service shares: names, labels, the container."""

    service: ServiceRequirement
    options: RenderOptions
    image: str
    resource: str | None

    @property
    def label(self) -> str:
        return dns_label(self.service.name)

    @property
    def app(self) -> str:
        return self.options.app or self.service.labels.get("app") or self.service.name

    def labels(self) -> dict[str, str]:
        """Labels of every object of the service; the service's own first, ours win."""
        return {
            **self.service.labels,
            NAME_LABEL: self.label,
            PART_OF_LABEL: dns_label(self.app),
            MANAGED_BY_LABEL: MANAGER,
        }

    def selector(self) -> dict[str, str]:
        """What the Service selects: the pods of every Deployment of the service."""
        return {NAME_LABEL: self.label, MANAGED_BY_LABEL: MANAGER}


def _label_issues(where: str, labels: dict[str, str]) -> list[Issue]:
    issues = []
    for key, value in labels.items():
        if not is_label_key(key):
            issues.append(Issue(f"{where}.{key}", "is not a valid Kubernetes label key"))
        if not is_label_value(value):
            issues.append(Issue(f"{where}.{key}", f"{value!r} is not a valid label value"))
    return issues


def _image(service: ServiceRequirement, options: RenderOptions) -> tuple[str, bool]:
    """The service's image with the registry in front if it names no registry host, or one
    made up from the service's name; and whether it was made up."""
    registry = options.image_registry.rstrip("/")
    if service.image is None:
        name = f"{dns_label(service.name)}:latest"
        return (f"{registry}/{name}" if registry else name), True
    first, slash, _ = service.image.partition("/")
    has_host = bool(slash) and ("." in first or ":" in first or first == "localhost")
    if registry and not has_host:
        return f"{registry}/{service.image}", False
    return service.image, False


def _resources(shape: _Shape) -> dict[str, dict[str, str]]:
    """Requests from the requirement. Memory is limited to its request (it cannot be taken
    back, and the placer counted only the request); CPU is limited only for a CPU-sensitive
    service, which then gets the Guaranteed QoS class; an accelerator is one device of its
    extended resource (requests must equal limits for those)."""
    service = shape.service
    requests: dict[str, str] = {}
    if service.cpu_millicores:
        requests["cpu"] = f"{service.cpu_millicores}m"
    if service.memory_mib:
        requests["memory"] = f"{service.memory_mib}Mi"
    limits = {k: v for k, v in requests.items() if k == "memory" or "cpu" in service.sensitivity}
    if shape.resource is not None:
        requests[shape.resource] = limits[shape.resource] = "1"
    resources: dict[str, dict[str, str]] = {}
    if requests:
        resources["requests"] = requests
    if limits:
        resources["limits"] = limits
    return resources


def _env(shape: _Shape) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}
        for name, path in DOWNWARD_ENV
    ]
    env += [
        {"name": "HARMONIA_APP", "value": shape.app},
        {"name": "HARMONIA_SERVICE", "value": shape.service.name},
        # a pod is one instance; $(POD_NAME) is expanded by the kubelet
        {"name": "HARMONIA_INSTANCE", "value": "$(POD_NAME)"},
    ]
    return env


def _service(shape: _Shape) -> dict[str, Any]:
    spec: dict[str, Any] = {"selector": shape.selector()}
    ports = [
        {"name": port_name(p), "port": p, "targetPort": port_name(p), "protocol": "TCP"}
        for p in shape.service.ports
    ]
    if ports:
        spec["ports"] = ports
    else:
        spec["clusterIP"] = "None"  # headless: DNS names for the pods, nothing to forward
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": dns_label(shape.service.name, letter_first=True),
            "namespace": shape.options.namespace,
            "labels": shape.labels(),
            "annotations": {SERVICE_ANNOTATION: shape.service.name},
        },
        "spec": spec,
    }


def _deployment(
    shape: _Shape, node: str, hostname: str, replicas: int, placer: str
) -> dict[str, Any]:
    service = shape.service
    name = joined_label(service.name, node)
    own = {DEPLOYMENT_LABEL: name}
    annotations = {SERVICE_ANNOTATION: service.name, NODE_ANNOTATION: node}
    if service.accelerator is not None:
        annotations[SHARE_ANNOTATION] = str(service.accelerator.share)
    container: dict[str, Any] = {
        "name": shape.label,
        "image": shape.image,
        "imagePullPolicy": shape.options.image_pull_policy,
        "env": _env(shape),
    }
    if service.ports:
        container["ports"] = [
            {"name": port_name(p), "containerPort": p, "protocol": "TCP"} for p in service.ports
        ]
    resources = _resources(shape)
    if resources:
        container["resources"] = resources
    pod_spec: dict[str, Any] = {
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {"key": HOSTNAME_LABEL, "operator": "In", "values": [hostname]}
                            ]
                        }
                    ]
                }
            }
        },
        "containers": [container],
    }
    if service.node_selector:
        pod_spec["nodeSelector"] = dict(service.node_selector)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": shape.options.namespace,
            "labels": {**shape.labels(), **own},
            "annotations": {**annotations, PLACER_ANNOTATION: placer},
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {NAME_LABEL: shape.label, **own}},
            "template": {
                "metadata": {"labels": {**shape.labels(), **own}, "annotations": annotations},
                "spec": pod_spec,
            },
        },
    }
