"""Typed errors of the Kubernetes target: each says which document, field, context or host."""

from __future__ import annotations

from harmonia.core.errors import HarmoniaError, Issue


def _listing(summary: str, issues: list[Issue]) -> str:
    lines = "\n".join(f"  - {issue}" for issue in issues)
    return f"{summary} ({len(issues)} problem(s)):\n{lines}"


class KubernetesError(HarmoniaError):
    """Base class of the errors of rendering and applying manifests."""


class RenderError(KubernetesError, ValueError):
    """A plan cannot be written as manifests (a name no DNS label can hold, an accelerator type
    with no extended resource, a placement naming an unknown service); ``issues`` name the input
    field. Raised before any document is returned, so nothing half-rendered is written."""

    def __init__(self, issues: list[Issue], what: str = "the plan") -> None:
        self.issues = issues
        super().__init__(_listing(f"cannot render {what}", issues))


class ManifestError(KubernetesError, ValueError):
    """Manifests are invalid: against the Kubernetes schemas, or unreadable; each issue names
    the document (index, kind/name) and the field."""

    def __init__(self, issues: list[Issue], source: str | None = None) -> None:
        self.issues = issues
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(_listing(f"{where}invalid manifests", issues))


class KubeConfigError(KubernetesError):
    """No cluster is configured: no kubeconfig, an unknown context, or a broken file."""


class ClusterUnreachable(KubernetesError, ConnectionError):
    """No Kubernetes API server answered at ``host`` (from ``context``) within the timeout."""

    def __init__(self, context: str, host: str, reason: str) -> None:
        self.context = context
        self.host = host
        self.reason = reason
        super().__init__(
            f"no Kubernetes cluster answered at {host} (context {context!r}): {reason}"
        )


class ApplyError(KubernetesError, RuntimeError):
    """The API server refused a document; ``applied`` lists what went through before it."""

    def __init__(self, document: str, status: int, reason: str, applied: list[str]) -> None:
        self.document = document
        self.status = status
        self.reason = reason
        self.applied = applied
        done = f"; applied before it: {', '.join(applied)}" if applied else "; nothing applied"
        super().__init__(f"the cluster refused {document} (HTTP {status}): {reason}{done}")
