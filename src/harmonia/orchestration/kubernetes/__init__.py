"""Kubernetes: a placement plan rendered as Deployments and Services, validated against the
schemas of a pinned Kubernetes version, and applied with the official client.

Rendering is pure (`render_plan`: dicts in, dicts out); files (`dump_manifests`,
`write_manifests`, `read_manifests`) and the cluster (`apply_manifests`) are kept apart, so
that rendering is tested without either. No ``kubectl`` is run. Each (service, node) group of
the plan is one Deployment pinned to its node; one Service per service selects all of them.
`render_harmonia` renders Harmonia's own server (and optionally its PostgreSQL) for a
domain's namespace (docs/deploy.md).
"""

from harmonia.orchestration.kubernetes._apply import (
    APPLIERS,
    APPLY_PATCH,
    Applied,
    apply_manifests,
)
from harmonia.orchestration.kubernetes._client import Connection, KubeTarget, connect
from harmonia.orchestration.kubernetes._errors import (
    ApplyError,
    ClusterUnreachable,
    KubeConfigError,
    KubernetesError,
    ManifestError,
    RenderError,
)
from harmonia.orchestration.kubernetes._files import (
    dump_manifests,
    parse_manifests,
    read_manifests,
    write_manifests,
)
from harmonia.orchestration.kubernetes._names import dns_label, is_dns_label, joined_label
from harmonia.orchestration.kubernetes._options import (
    ACCELERATOR_RESOURCES,
    KUBERNETES_VERSION,
    PullPolicy,
    RenderOptions,
)
from harmonia.orchestration.kubernetes._render import (
    DEPLOYMENT_LABEL,
    HOSTNAME_LABEL,
    MANAGER,
    NAME_LABEL,
    Rendered,
    render_plan,
)
from harmonia.orchestration.kubernetes._self import (
    DOMAIN_LABEL,
    SECRET_KEYS,
    SELF_PART_OF,
    RenderedSelf,
    SelfOptions,
    SelfSecrets,
    render_harmonia,
)
from harmonia.orchestration.kubernetes._validate import validate_manifests

__all__ = [
    "ACCELERATOR_RESOURCES",
    "APPLIERS",
    "APPLY_PATCH",
    "DEPLOYMENT_LABEL",
    "DOMAIN_LABEL",
    "HOSTNAME_LABEL",
    "KUBERNETES_VERSION",
    "MANAGER",
    "NAME_LABEL",
    "SECRET_KEYS",
    "SELF_PART_OF",
    "Applied",
    "ApplyError",
    "ClusterUnreachable",
    "Connection",
    "KubeConfigError",
    "KubeTarget",
    "KubernetesError",
    "ManifestError",
    "PullPolicy",
    "RenderError",
    "RenderOptions",
    "Rendered",
    "RenderedSelf",
    "SelfOptions",
    "SelfSecrets",
    "apply_manifests",
    "connect",
    "dns_label",
    "dump_manifests",
    "is_dns_label",
    "joined_label",
    "parse_manifests",
    "read_manifests",
    "render_harmonia",
    "render_plan",
    "validate_manifests",
    "write_manifests",
]
