"""Harmonia itself as Kubernetes objects (plain dicts): pure, no files, no cluster.

One domain's deployment of the server, in the order to apply it: its Namespace, the Secret
the server reads its admin token, database URL and registration key from, optionally a
PostgreSQL (a StatefulSet with its volume claim, and a headless Service) for a domain without
an external database, then the server's Deployment of N replicas with readiness (``/readyz``)
and liveness (``/healthz``) probes, its Service, and a PodDisruptionBudget.

The replicas share one PostgreSQL database: SQLite lives in one pod's filesystem, so it is
refused. The Secret's values are inputs (`SelfSecrets`): rendering makes up nothing, so the
same inputs give the same bytes; without them the Secret is only referenced, and must exist.

>>> secrets = SelfSecrets(admin_token="t", postgres_password="p")
>>> rendered = render_harmonia(SelfOptions(namespace="vendor", with_postgres=True), secrets)
>>> [d["kind"] for d in rendered.documents]  # doctest: +NORMALIZE_WHITESPACE
['Namespace', 'Secret', 'StatefulSet', 'Service', 'Deployment', 'Service',
 'PodDisruptionBudget']
>>> rendered.secret_values["database-url"]
'postgresql+psycopg://harmonia:p@harmonia-postgres.vendor.svc:5432/harmonia'
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from harmonia import __version__
from harmonia.core.errors import Issue
from harmonia.orchestration.kubernetes._errors import RenderError
from harmonia.orchestration.kubernetes._names import (
    MAX_LABEL,
    is_dns1035_label,
    is_dns_label,
    is_dns_subdomain,
    is_label_value,
)
from harmonia.orchestration.kubernetes._options import (
    KUBERNETES_VERSION,
    PULL_POLICIES,
    PullPolicy,
)
from harmonia.orchestration.kubernetes._render import (
    MANAGED_BY_LABEL,
    MANAGER,
    NAME_LABEL,
    PART_OF_LABEL,
)

COMPONENT_LABEL = "app.kubernetes.io/component"
VERSION_LABEL = "app.kubernetes.io/version"
#: the domain a deployment of Harmonia serves (absent when rendered for no domain)
DOMAIN_LABEL = "harmonia.io/domain"
#: the ``part-of`` of Harmonia's own objects: no application's (application names have no
#: dots), so that pruning an application's deployment never touches Harmonia itself
SELF_PART_OF = "harmonia.control-plane"
#: the image when none is given (built from this version: docs/deploy.md)
DEFAULT_IMAGE = f"harmonia:{__version__}"
DEFAULT_POSTGRES_IMAGE = "postgres:16"
#: the routes the probes call (the server's own: harmonia.server.api.routes.health)
LIVENESS_PATH = "/healthz"
READINESS_PATH = "/readyz"
#: where the server keeps its data directory (an ``emptyDir``: the state is in PostgreSQL)
DATA_DIR = "/var/lib/harmonia"
PGDATA_MOUNT = "/var/lib/postgresql/data"
POSTGRES_PORT = 5432
POSTGRES_USER = "harmonia"
POSTGRES_DB = "harmonia"
#: the uid of the server's processes (the image's ``harmonia`` user) and of PostgreSQL's
#: official image (``postgres``, on Debian)
SERVER_UID = 10001
POSTGRES_UID = 999

#: the keys of the Secret, each with the variable the server reads it as (None: PostgreSQL's)
SECRET_KEYS: dict[str, str | None] = {
    "admin-token": "HARMONIA_ADMIN_TOKEN",
    "database-url": "HARMONIA_DATABASE_URL",
    "registration-key": "HARMONIA_REGISTRATION_KEY",
    "postgres-password": None,
}
#: keys the server starts without (an empty registration key: only the admin registers)
OPTIONAL_KEYS = frozenset({"registration-key"})

_QUANTITY = re.compile(r"^[+]?(\d+(\.\d*)?|\.\d+)(e[+-]?\d+|[EPTGMK]i|[mkMGTPE])?$")


@dataclass(frozen=True)
class SelfSecrets:
    """What the Secret holds. ``database_url`` is an external database's (PostgreSQL); with
    ``with_postgres`` it is left empty and built from ``postgres_password``."""

    admin_token: str
    registration_key: str = ""
    database_url: str = ""
    postgres_password: str = ""


@dataclass(frozen=True)
class SelfOptions:
    """How Harmonia is deployed in one domain's namespace.

    ``name`` names every object (the database's are ``<name>-postgres``). Resources are
    Kubernetes quantities; the server's CPU is requested, not limited (a throttled server
    answers its probes late). ``artifact_store`` (``s3://bucket/prefix``) is where the replicas
    share the registry's artifacts; without it each keeps them in its own data directory.
    """

    namespace: str = "harmonia"
    domain: str | None = None
    name: str = "harmonia"
    image: str = DEFAULT_IMAGE
    image_pull_policy: PullPolicy = "IfNotPresent"
    replicas: int = 2
    port: int = 8000
    cpu_request: str = "250m"
    memory_request: str = "512Mi"
    memory_limit: str = "1Gi"
    with_postgres: bool = False
    postgres_image: str = DEFAULT_POSTGRES_IMAGE
    postgres_storage: str = "10Gi"
    postgres_memory_limit: str = "1Gi"
    storage_class: str | None = None
    create_namespace: bool = True
    artifact_store: str = ""
    kubernetes_version: str = KUBERNETES_VERSION

    @property
    def postgres_name(self) -> str:
        return f"{self.name}-postgres"

    @property
    def secret_name(self) -> str:
        return self.name

    @property
    def postgres_host(self) -> str:
        """The database's address from the server's pods (its Service's DNS name)."""
        return f"{self.postgres_name}.{self.namespace}.svc"


@dataclass(frozen=True)
class RenderedSelf:
    """Harmonia's objects in the order to apply them, what the Secret holds (empty when it
    is not rendered), and notes for the operator."""

    documents: list[dict[str, Any]]
    secret_values: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.documents if d["kind"] == kind]


def postgres_url(options: SelfOptions, password: str) -> str:
    """The URL of the PostgreSQL that `render_harmonia` renders, as the server reaches it."""
    return (
        f"postgresql+psycopg://{POSTGRES_USER}:{quote(password, safe='')}@"
        f"{options.postgres_host}:{POSTGRES_PORT}/{POSTGRES_DB}"
    )


def render_harmonia(options: SelfOptions, secrets: SelfSecrets | None = None) -> RenderedSelf:
    """Harmonia's objects for one namespace; raise `RenderError` naming every input that
    cannot be written (nothing is returned half-rendered).

    Without ``secrets`` the Secret is not rendered, only referenced by name: it must exist
    in the namespace with the keys `SECRET_KEYS` names (``postgres-password`` only with
    ``with_postgres``; ``registration-key`` may be absent).
    """
    issues = _option_issues(options)
    values: dict[str, str] = {}
    notes: list[str] = []
    if secrets is not None:
        issues += _secret_issues(options, secrets)
        values = _secret_values(options, secrets)
    if issues:
        raise RenderError(issues, "Harmonia's manifests")
    if options.replicas > 1 and not options.artifact_store:
        notes.append(
            "no artifact store given: each replica keeps the registry's artifacts in its own "
            "data directory; share them with an s3:// store (--artifact-store)"
        )
    if secrets is None:
        keys = [k for k in SECRET_KEYS if k != "postgres-password" or options.with_postgres]
        notes.append(
            f"the Secret {options.secret_name!r} is not rendered: it must exist in "
            f"{options.namespace} with the keys {', '.join(keys)}"
        )
    documents: list[dict[str, Any]] = []
    if options.create_namespace:
        documents.append(_namespace(options))
    if secrets is not None:
        documents.append(_secret(options, values))
    if options.with_postgres:
        documents += [_postgres_statefulset(options), _postgres_service(options)]
    documents += [_deployment(options), _service(options), _disruption_budget(options)]
    return RenderedSelf(documents, values, notes)


def _option_issues(options: SelfOptions) -> list[Issue]:
    issues: list[Issue] = []
    if not is_dns_label(options.namespace):
        issues.append(Issue("namespace", f"{options.namespace!r} is not a DNS-1123 label"))
    if not is_dns1035_label(options.name) or len(options.postgres_name) > MAX_LABEL:
        issues.append(
            Issue(
                "name",
                f"{options.name!r} is not a DNS-1035 label of at most "
                f"{MAX_LABEL - len('-postgres')} characters",
            )
        )
    if options.domain is not None and not is_label_value(options.domain):
        issues.append(Issue("domain", f"{options.domain!r} cannot be a label value"))
    if options.replicas < 1:
        issues.append(Issue("replicas", f"is {options.replicas}, at least 1"))
    if not 1 <= options.port <= 65535:
        issues.append(Issue("port", f"{options.port} is not a port"))
    for what in ("image", "postgres_image"):
        if not getattr(options, what).strip():
            issues.append(Issue(what, "is empty"))
    if options.image_pull_policy not in PULL_POLICIES:
        issues.append(
            Issue(
                "image_pull_policy",
                f"is {options.image_pull_policy!r}, not one of {', '.join(PULL_POLICIES)}",
            )
        )
    quantities = (
        "cpu_request",
        "memory_request",
        "memory_limit",
        "postgres_storage",
        "postgres_memory_limit",
    )
    for what in quantities:
        value = getattr(options, what)
        if not _QUANTITY.match(value):
            issues.append(Issue(what, f"{value!r} is not a Kubernetes quantity (250m, 1Gi)"))
    if options.storage_class is not None and not is_dns_subdomain(options.storage_class):
        issues.append(
            Issue("storage_class", f"{options.storage_class!r} is not a DNS-1123 subdomain")
        )
    return issues


def _secret_issues(options: SelfOptions, secrets: SelfSecrets) -> list[Issue]:
    issues: list[Issue] = []
    if not secrets.admin_token:
        issues.append(Issue("secrets.admin_token", "is empty: the server needs one"))
    url = secrets.database_url
    if options.with_postgres:
        if url:
            issues.append(
                Issue(
                    "secrets.database_url",
                    "is given, but so is with_postgres: the server uses one database",
                )
            )
        if not secrets.postgres_password:
            issues.append(
                Issue("secrets.postgres_password", "is empty: with_postgres needs a password")
            )
    elif not url:
        issues.append(
            Issue(
                "secrets.database_url",
                "is empty: the replicas need one PostgreSQL database they share; give an "
                "external database's URL, or with_postgres",
            )
        )
    elif not url.startswith("postgresql"):
        scheme = url.partition(":")[0]
        issues.append(
            Issue(
                "secrets.database_url",
                f"is a {scheme} URL: the replicas share one PostgreSQL database "
                "(postgresql+psycopg://user:password@host:5432/db); SQLite lives in one pod",
            )
        )
    return issues


def _secret_values(options: SelfOptions, secrets: SelfSecrets) -> dict[str, str]:
    values = {
        "admin-token": secrets.admin_token,
        "database-url": secrets.database_url,
        "registration-key": secrets.registration_key,
    }
    if options.with_postgres:
        values["database-url"] = postgres_url(options, secrets.postgres_password)
        values["postgres-password"] = secrets.postgres_password
    return values


# -- objects ---------------------------------------------------------------------------------
def _labels(options: SelfOptions, component: str) -> dict[str, str]:
    labels = {
        NAME_LABEL: options.name,
        COMPONENT_LABEL: component,
        PART_OF_LABEL: SELF_PART_OF,
        MANAGED_BY_LABEL: MANAGER,
    }
    if is_label_value(__version__):
        labels[VERSION_LABEL] = __version__
    if options.domain is not None:
        labels[DOMAIN_LABEL] = options.domain
    return labels


def selector(options: SelfOptions, component: str) -> dict[str, str]:
    """The labels that select one component's pods (``server``, ``database``)."""
    return {NAME_LABEL: options.name, COMPONENT_LABEL: component}


def _metadata(options: SelfOptions, name: str, component: str) -> dict[str, Any]:
    return {"name": name, "namespace": options.namespace, "labels": _labels(options, component)}


def _namespace(options: SelfOptions) -> dict[str, Any]:
    labels = {PART_OF_LABEL: SELF_PART_OF, MANAGED_BY_LABEL: MANAGER}
    if options.domain is not None:
        labels[DOMAIN_LABEL] = options.domain
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": options.namespace, "labels": labels},
    }


def _secret(options: SelfOptions, values: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _metadata(options, options.secret_name, "server"),
        "type": "Opaque",
        "stringData": dict(values),
    }


def _secret_env(options: SelfOptions, name: str, key: str) -> dict[str, Any]:
    ref: dict[str, Any] = {"name": options.secret_name, "key": key}
    if key in OPTIONAL_KEYS:
        ref["optional"] = True
    return {"name": name, "valueFrom": {"secretKeyRef": ref}}


def _restricted(uid: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The pod's and the container's security contexts (the ``restricted`` Pod Security
    Standard): a fixed non-root user, no privilege escalation, no capabilities."""
    pod = {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "fsGroup": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    container = {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    return pod, container


def _deployment(options: SelfOptions) -> dict[str, Any]:
    env: list[dict[str, Any]] = [
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "HARMONIA_DATA_DIR", "value": DATA_DIR},
        # the uid has no home in the image's passwd: give it a writable one
        {"name": "HOME", "value": "/tmp"},
    ]
    env += [
        _secret_env(options, variable, key)
        for key, variable in SECRET_KEYS.items()
        if variable is not None
    ]
    if options.artifact_store:
        env.append({"name": "HARMONIA_ARTIFACT_STORE", "value": options.artifact_store})
    pod_security, container_security = _restricted(SERVER_UID)

    def probe(path: str, period: int, failures: int) -> dict[str, Any]:
        return {
            "httpGet": {"path": path, "port": "http"},
            "periodSeconds": period,
            "timeoutSeconds": 3,
            "failureThreshold": failures,
        }

    container: dict[str, Any] = {
        "name": "server",
        "image": options.image,
        "imagePullPolicy": options.image_pull_policy,
        "command": ["harmonia", "serve", "--host", "0.0.0.0", "--port", str(options.port)],
        "ports": [{"name": "http", "containerPort": options.port, "protocol": "TCP"}],
        "env": env,
        "resources": {
            "requests": {"cpu": options.cpu_request, "memory": options.memory_request},
            "limits": {"memory": options.memory_limit},
        },
        # the store migrates the database before the server listens: up to 2 minutes
        "startupProbe": probe(LIVENESS_PATH, 2, 60),
        "livenessProbe": probe(LIVENESS_PATH, 10, 3),
        "readinessProbe": probe(READINESS_PATH, 5, 2),
        "securityContext": container_security,
        "volumeMounts": [
            {"name": "data", "mountPath": DATA_DIR},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    own = selector(options, "server")
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(options, options.name, "server"),
        "spec": {
            "replicas": options.replicas,
            "selector": {"matchLabels": own},
            # a new replica is ready before an old one goes: never fewer than asked for
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": {
                "metadata": {"labels": _labels(options, "server")},
                "spec": {
                    "securityContext": pod_security,
                    # one node going down takes one replica, not all of them
                    "topologySpreadConstraints": [
                        {
                            "maxSkew": 1,
                            "topologyKey": "kubernetes.io/hostname",
                            "whenUnsatisfiable": "ScheduleAnyway",
                            "labelSelector": {"matchLabels": own},
                        }
                    ],
                    "terminationGracePeriodSeconds": 30,
                    "containers": [container],
                    "volumes": [
                        {"name": "data", "emptyDir": {}},
                        {"name": "tmp", "emptyDir": {}},
                    ],
                },
            },
        },
    }


def _service(options: SelfOptions) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(options, options.name, "server"),
        "spec": {
            "type": "ClusterIP",
            "selector": selector(options, "server"),
            "ports": [
                {"name": "http", "port": options.port, "targetPort": "http", "protocol": "TCP"}
            ],
        },
    }


def _disruption_budget(options: SelfOptions) -> dict[str, Any]:
    # one replica at a time may be evicted (a node drain): with one replica, that one, so a
    # drain is never blocked for good; with more, the others keep serving
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _metadata(options, options.name, "server"),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": selector(options, "server")},
        },
    }


def _postgres_statefulset(options: SelfOptions) -> dict[str, Any]:
    name = options.postgres_name
    pod_security, container_security = _restricted(POSTGRES_UID)
    ready = {"exec": {"command": ["pg_isready", "-U", POSTGRES_USER, "-d", POSTGRES_DB]}}
    container: dict[str, Any] = {
        "name": "postgres",
        "image": options.postgres_image,
        "imagePullPolicy": options.image_pull_policy,
        "ports": [{"name": "postgres", "containerPort": POSTGRES_PORT, "protocol": "TCP"}],
        "env": [
            {"name": "POSTGRES_USER", "value": POSTGRES_USER},
            {"name": "POSTGRES_DB", "value": POSTGRES_DB},
            _secret_env(options, "POSTGRES_PASSWORD", "postgres-password"),
            # a directory below the mount: a fresh volume's lost+found is not in the way
            {"name": "PGDATA", "value": f"{PGDATA_MOUNT}/pgdata"},
        ],
        "resources": {
            "requests": {"cpu": "250m", "memory": "256Mi"},
            "limits": {"memory": options.postgres_memory_limit},
        },
        "readinessProbe": {**ready, "periodSeconds": 5, "timeoutSeconds": 3},
        "livenessProbe": {
            **ready,
            "initialDelaySeconds": 30,
            "periodSeconds": 10,
            "timeoutSeconds": 5,
            "failureThreshold": 6,
        },
        "securityContext": container_security,
        "volumeMounts": [
            {"name": "data", "mountPath": PGDATA_MOUNT},
            {"name": "run", "mountPath": "/var/run/postgresql"},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    claim: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": options.postgres_storage}},
    }
    if options.storage_class is not None:
        claim["storageClassName"] = options.storage_class
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": _metadata(options, name, "database"),
        "spec": {
            "serviceName": name,
            "replicas": 1,
            "selector": {"matchLabels": selector(options, "database")},
            "template": {
                "metadata": {"labels": _labels(options, "database")},
                "spec": {
                    "securityContext": pod_security,
                    "terminationGracePeriodSeconds": 60,
                    "containers": [container],
                    "volumes": [
                        {"name": "run", "emptyDir": {}},
                        {"name": "tmp", "emptyDir": {}},
                    ],
                },
            },
            # the claim outlives the StatefulSet: deleting Harmonia keeps the data
            "persistentVolumeClaimRetentionPolicy": {
                "whenDeleted": "Retain",
                "whenScaled": "Retain",
            },
            "volumeClaimTemplates": [
                {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "metadata": {"name": "data", "labels": _labels(options, "database")},
                    "spec": claim,
                }
            ],
        },
    }


def _postgres_service(options: SelfOptions) -> dict[str, Any]:
    # headless: the StatefulSet's governing Service; its name resolves to the database's pod
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(options, options.postgres_name, "database"),
        "spec": {
            "clusterIP": "None",
            "selector": selector(options, "database"),
            "ports": [
                {
                    "name": "postgres",
                    "port": POSTGRES_PORT,
                    "targetPort": "postgres",
                    "protocol": "TCP",
                }
            ],
        },
    }
