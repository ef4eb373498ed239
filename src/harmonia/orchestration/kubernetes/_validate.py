"""Manifests checked before they leave Harmonia: against the OpenAPI schemas of a pinned
Kubernetes version (``kubernetes-validate``, strict: an unknown field is an error), and for
what the schemas do not say but the API server refuses or a cluster gets silently wrong:
names that are not DNS labels, a Deployment whose selector misses its own pods, a Service
with no selector (ROHE's, which routes to nothing).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from harmonia.core.errors import Issue
from harmonia.orchestration.kubernetes._errors import ManifestError
from harmonia.orchestration.kubernetes._names import (
    is_dns1035_label,
    is_dns_label,
    is_dns_subdomain,
)
from harmonia.orchestration.kubernetes._options import KUBERNETES_VERSION


def describe(index: int, document: Mapping[str, Any]) -> str:
    """How issues name a document: its index in the file and ``Kind/name``."""
    metadata = document.get("metadata")
    name = metadata.get("name", "?") if isinstance(metadata, Mapping) else "?"
    return f"[{index}] {document.get('kind', '?')}/{name}"


def validate_manifests(
    documents: Sequence[Mapping[str, Any]],
    kubernetes_version: str = KUBERNETES_VERSION,
    *,
    source: str | None = None,
) -> None:
    """Raise `ManifestError` naming each invalid document and field; return if all are valid.

    One schema error is reported per document (the first the validator finds), together with
    every check of names and selectors.
    """
    # imported here: it loads jsonschema, and only rendering and applying need it
    import kubernetes_validate
    from kubernetes_validate.utils import VersionNotSupportedError

    issues: list[Issue] = []
    for i, document in enumerate(documents):
        if not isinstance(document, Mapping):
            issues.append(Issue(f"[{i}]", f"is a {type(document).__name__}, not a mapping"))
            continue
        where = describe(i, document)
        found = _structure_issues(where, document)
        issues += found
        if found:
            continue
        issues += _semantic_issues(where, document)
        try:
            kubernetes_validate.validate(dict(document), kubernetes_version, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(part) for part in error.path)
            issues.append(Issue(f"{where} {path}".rstrip(), str(error.message)))
        except kubernetes_validate.SchemaNotFoundError as error:
            issues.append(Issue(where, str(error.message)))
        except VersionNotSupportedError:
            raise ValueError(
                f"kubernetes-validate {kubernetes_validate.__version__} has no schemas for "
                f"Kubernetes {kubernetes_version}"
            ) from None
    if issues:
        raise ManifestError(issues, source)


def _structure_issues(where: str, document: Mapping[str, Any]) -> list[Issue]:
    """What any object needs before it can be validated or applied."""
    issues = []
    for key in ("apiVersion", "kind"):
        if not isinstance(document.get(key), str):
            issues.append(Issue(f"{where} {key}", "is missing or not a string"))
    metadata = document.get("metadata")
    if not isinstance(metadata, Mapping) or not isinstance(metadata.get("name"), str):
        issues.append(Issue(f"{where} metadata.name", "is missing or not a string"))
        return issues
    name = metadata["name"]
    if document.get("kind") == "Service":
        if not is_dns1035_label(name):
            issues.append(Issue(f"{where} metadata.name", f"{name!r} is not a DNS-1035 label"))
    elif not is_dns_subdomain(name):
        issues.append(Issue(f"{where} metadata.name", f"{name!r} is not a DNS-1123 subdomain"))
    namespace = metadata.get("namespace")
    if namespace is not None and not (isinstance(namespace, str) and is_dns_label(namespace)):
        issues.append(
            Issue(f"{where} metadata.namespace", f"{namespace!r} is not a DNS-1123 label")
        )
    return issues


def _semantic_issues(where: str, document: Mapping[str, Any]) -> list[Issue]:
    """Selectors: a Deployment's (a StatefulSet's) must match its pod template, a Service
    must have one (but an ``ExternalName`` Service, a DNS alias, selects no pods by design)."""
    spec = document.get("spec")
    if not isinstance(spec, Mapping):
        return []
    if document["kind"] in ("Deployment", "StatefulSet"):
        selector = (spec.get("selector") or {}).get("matchLabels") or {}
        labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        if not isinstance(selector, Mapping) or not isinstance(labels, Mapping):
            return []  # the schema check reports the wrong type
        if not selector:
            return [Issue(f"{where} spec.selector.matchLabels", "is empty")]
        missing = {k: v for k, v in selector.items() if labels.get(k) != v}
        if missing:
            return [
                Issue(
                    f"{where} spec.selector.matchLabels",
                    f"does not match the pod template's labels: {missing}",
                )
            ]
    alias = spec.get("type") == "ExternalName"
    if document["kind"] == "Service" and not alias and not spec.get("selector"):
        return [Issue(f"{where} spec.selector", "is missing: the Service selects no pods")]
    return []
