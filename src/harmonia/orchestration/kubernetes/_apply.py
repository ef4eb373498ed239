"""Manifests applied to a cluster with server-side apply, through the official client.

Server-side apply (a PATCH of the whole object as ``application/apply-patch+yaml``, field
manager ``harmonia``) creates an object or updates the fields Harmonia owns, leaving fields
that others own (an autoscaler's, an operator's) alone; ``force`` takes back fields that
someone changed by hand, since the plan is the truth. A dry run (``dryRun=All``) sends the
same requests and the server checks them, admission included, without storing anything.

Pruning deletes what an earlier plan applied and this one no longer has (a Deployment for a
node the service has left), so that every replica running is one the plan placed. It only
touches objects labelled ``managed-by: harmonia`` and ``part-of`` an application in the
manifests, in their namespaces.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from harmonia.core.errors import Issue
from harmonia.orchestration.kubernetes._client import Connection, KubeTarget, connect
from harmonia.orchestration.kubernetes._errors import ApplyError, ManifestError
from harmonia.orchestration.kubernetes._render import MANAGED_BY_LABEL, MANAGER, PART_OF_LABEL
from harmonia.orchestration.kubernetes._validate import describe

APPLY_PATCH = "application/apply-patch+yaml"
#: what ``dryRun`` is set to in a dry run (the only value the API defines)
DRY_RUN_ALL = "All"

Action = Literal["created", "configured", "pruned"]


@dataclass(frozen=True)
class _Calls:
    """The typed calls of the official client for one kind of object. A kind without
    ``list`` and ``delete`` is never pruned; a cluster-scoped one (a Namespace) is patched
    without a namespace."""

    api: str
    patch: str
    list: str | None = None
    delete: str | None = None
    namespaced: bool = True

    def bound(
        self, connection: Connection, which: Literal["patch", "list", "delete"]
    ) -> Callable[..., Any]:
        """The call ``which`` on an API object of ``connection``'s client."""
        import kubernetes.client

        api = getattr(kubernetes.client, self.api)(connection.api)
        call: Callable[..., Any] = getattr(api, str(getattr(self, which)))
        return call


#: the kinds Harmonia applies, by (apiVersion, kind); the prunable ones (Deployments and
#: Services of applications) in the order they are pruned. Harmonia's own objects
#: (`render_harmonia`) add a Namespace, a Secret, a StatefulSet and a PodDisruptionBudget,
#: which pruning never deletes: a Secret or a database is not removed by omission.
APPLIERS: dict[tuple[str, str], _Calls] = {
    ("apps/v1", "Deployment"): _Calls(
        "AppsV1Api",
        "patch_namespaced_deployment_with_http_info",
        "list_namespaced_deployment",
        "delete_namespaced_deployment",
    ),
    ("v1", "Service"): _Calls(
        "CoreV1Api",
        "patch_namespaced_service_with_http_info",
        "list_namespaced_service",
        "delete_namespaced_service",
    ),
    ("v1", "Namespace"): _Calls("CoreV1Api", "patch_namespace_with_http_info", namespaced=False),
    ("v1", "Secret"): _Calls("CoreV1Api", "patch_namespaced_secret_with_http_info"),
    ("apps/v1", "StatefulSet"): _Calls("AppsV1Api", "patch_namespaced_stateful_set_with_http_info"),
    ("policy/v1", "PodDisruptionBudget"): _Calls(
        "PolicyV1Api", "patch_namespaced_pod_disruption_budget_with_http_info"
    ),
}


@dataclass(frozen=True)
class Applied:
    """One object the cluster accepted: ``created`` (HTTP 201), ``configured`` (200), or
    ``pruned`` (deleted: no longer in the plan)."""

    kind: str
    name: str
    namespace: str
    action: Action
    dry_run: bool

    def __str__(self) -> str:
        where = "from" if self.action == "pruned" else "in"
        scope = f" {where} {self.namespace}" if self.namespace else ""  # a Namespace has none
        return f"{self.kind}/{self.name} {self.action}{scope}" + (
            " (dry run)" if self.dry_run else ""
        )


def apply_manifests(
    documents: Sequence[Mapping[str, Any]],
    target: KubeTarget,
    *,
    dry_run: bool = False,
    namespace: str | None = None,
    prune: bool = False,
    connection: Connection | None = None,
) -> list[Applied]:
    """Apply each document in order, then (``prune``) delete what Harmonia applied before
    and the documents no longer have; return what the cluster did.

    A document without a namespace goes to ``namespace``, or else ``target.namespace``;
    with ``namespace`` given, a document naming another is refused (as kubectl does).
    Raises `ManifestError` before connecting (an unsupported kind, a namespace mismatch),
    `KubeConfigError` when no cluster is configured, `ClusterUnreachable` when none answers,
    `ApplyError` when the cluster refuses a document (the ones before it stay applied).
    """
    bodies = _prepared(documents, namespace or target.namespace, explicit=namespace is not None)
    own = connection is None
    connection = connection or connect(target)
    try:
        connection.check_reachable()
        done: list[Applied] = []
        for body in bodies:
            done.append(_apply_one(connection, body, dry_run, done))
        if prune:
            done += _prune(connection, bodies, dry_run, done)
        return done
    finally:
        if own:
            connection.close()


def _prepared(
    documents: Sequence[Mapping[str, Any]], namespace: str, *, explicit: bool
) -> list[dict[str, Any]]:
    """Copies of the documents with their namespace set; issues for what cannot be applied."""
    issues: list[Issue] = []
    bodies: list[dict[str, Any]] = []
    for i, document in enumerate(documents):
        where = describe(i, document)
        key = (document.get("apiVersion"), document.get("kind"))
        if key not in APPLIERS:
            known = ", ".join(f"{k} ({v})" for v, k in APPLIERS)
            issues.append(Issue(where, f"Harmonia applies only {known}, not {key[1]} ({key[0]})"))
            continue
        metadata = dict(document.get("metadata") or {})
        if not APPLIERS[key].namespaced:
            metadata.pop("namespace", None)
            bodies.append({**document, "metadata": metadata})
            continue
        own = metadata.get("namespace")
        if explicit and own not in (None, namespace):
            issues.append(
                Issue(f"{where} metadata.namespace", f"is {own!r}, but {namespace!r} was asked for")
            )
            continue
        metadata["namespace"] = own or namespace
        bodies.append({**document, "metadata": metadata})
    if issues:
        raise ManifestError(issues)
    return bodies


def _apply_one(
    connection: Connection, body: dict[str, Any], dry_run: bool, before: Sequence[Applied]
) -> Applied:
    """One server-side apply; an `ApplyError` names what was applied ``before`` it."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    metadata = body["metadata"]
    name = f"{body['kind']}/{metadata['name']}"
    calls = APPLIERS[(body["apiVersion"], body["kind"])]
    patch = calls.bound(connection, "patch")
    scope = {"namespace": metadata["namespace"]} if calls.namespaced else {}
    try:
        _, status, _ = patch(  # (object, HTTP status, headers)
            name=metadata["name"],
            **scope,
            body=body,
            field_manager=MANAGER,
            force=True,
            dry_run=DRY_RUN_ALL if dry_run else None,
            _content_type=APPLY_PATCH,
            _request_timeout=connection.target.timeout,
        )
    except ApiException as error:
        done = [f"{a.kind}/{a.name}" for a in before]
        raise ApplyError(name, int(error.status or 0), _message(error), done) from None
    except HTTPError as error:
        raise connection.unreachable(error) from None
    action: Action = "created" if status == 201 else "configured"
    namespace = metadata["namespace"] if calls.namespaced else ""
    return Applied(body["kind"], metadata["name"], namespace, action, dry_run)


def _prune(
    connection: Connection, bodies: list[dict[str, Any]], dry_run: bool, before: list[Applied]
) -> list[Applied]:
    """Delete the objects of the applications in ``bodies`` that Harmonia manages and
    ``bodies`` no longer has, Deployments first (their pods go before their Service)."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    prunable = [b for b in bodies if APPLIERS[(b["apiVersion"], b["kind"])].list is not None]
    keep = {(b["kind"], b["metadata"]["namespace"], b["metadata"]["name"]) for b in prunable}
    scopes: dict[str, set[str]] = {}
    for body in prunable:
        labels = body["metadata"].get("labels") or {}
        if labels.get(MANAGED_BY_LABEL) == MANAGER and labels.get(PART_OF_LABEL):
            scopes.setdefault(body["metadata"]["namespace"], set()).add(labels[PART_OF_LABEL])
    pruned: list[Applied] = []
    for (_, kind), calls in APPLIERS.items():
        if calls.list is None:
            continue
        for namespace, apps in sorted(scopes.items()):
            selector = f"{MANAGED_BY_LABEL}={MANAGER},{PART_OF_LABEL} in ({','.join(sorted(apps))})"
            name = f"{kind} in {namespace}"
            try:
                listed: Any = calls.bound(connection, "list")(
                    namespace,
                    label_selector=selector,
                    _preload_content=False,
                    _request_timeout=connection.target.timeout,
                )
                names = sorted(
                    item["metadata"]["name"] for item in json.loads(listed.read())["items"]
                )
                for stale in (n for n in names if (kind, namespace, n) not in keep):
                    name = f"{kind}/{stale}"
                    deleted: Any = calls.bound(connection, "delete")(
                        stale,
                        namespace,
                        dry_run=DRY_RUN_ALL if dry_run else None,
                        _preload_content=False,
                        _request_timeout=connection.target.timeout,
                    )
                    deleted.read()
                    pruned.append(Applied(kind, stale, namespace, "pruned", dry_run))
            except ApiException as error:
                done = [f"{a.kind}/{a.name}" for a in [*before, *pruned]]
                raise ApplyError(
                    f"pruning {name}", int(error.status or 0), _message(error), done
                ) from None
            except HTTPError as error:
                raise connection.unreachable(error) from None
    return pruned


def _message(error: Any) -> str:
    """The API server's own message (a ``Status`` object's ``message``), else the reason."""
    try:
        status = json.loads(error.body or "")
    except (TypeError, ValueError):
        status = None
    if isinstance(status, dict) and status.get("message"):
        return str(status["message"])
    return str(error.reason or "no reason given")
