"""Manifests as multi-document YAML: written in the order given (stable input, byte-stable
output: no timestamps, keys in the order rendered), read back as plain dicts."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from harmonia.core.errors import Issue
from harmonia.orchestration.kubernetes._errors import ManifestError

HEADER = "# Kubernetes manifests rendered by Harmonia (harmonia deploy render); apply them with\n"
HEADER += "# `harmonia deploy apply --manifests FILE`.\n"


def dump_manifests(documents: Sequence[Mapping[str, Any]], header: str = HEADER) -> str:
    """The documents as one YAML stream, each after a ``---``."""
    body = yaml.safe_dump_all(
        [dict(d) for d in documents],
        explicit_start=True,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=100,
    )
    return header + body


def write_manifests(
    documents: Sequence[Mapping[str, Any]],
    path: Path,
    header: str = HEADER,
    *,
    private: bool = False,
) -> None:
    """Write the YAML stream to ``path`` whole (through a temporary file, then renamed), so a
    failed write never leaves half a manifest behind. ``private``: readable by its owner
    only, from the start (the manifests hold a Secret's values)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    if private:
        partial.unlink(missing_ok=True)  # a leftover one may be readable by others
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(dump_manifests(documents, header))
    else:
        partial.write_text(dump_manifests(documents, header), encoding="utf-8")
    partial.replace(path)


def parse_manifests(text: str, source: str | None = None) -> list[dict[str, Any]]:
    """The objects of a YAML (or JSON) stream; empty documents are skipped, a ``List`` is
    unpacked; anything else that is not a mapping is a `ManifestError`."""
    try:
        loaded = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as error:
        raise ManifestError([Issue("", f"is not YAML: {error}")], source) from None
    documents: list[dict[str, Any]] = []
    issues: list[Issue] = []
    for i, document in enumerate(loaded):
        if isinstance(document, dict) and document.get("kind") == "List":
            documents += [item for item in document.get("items") or [] if item]
        elif isinstance(document, dict):
            documents.append(document)
        else:
            issues.append(Issue(f"[{i}]", f"is a {type(document).__name__}, not a mapping"))
    if issues:
        raise ManifestError(issues, source)
    return documents


def read_manifests(path: Path) -> list[dict[str, Any]]:
    """The objects of a manifest file (``-`` is not read here: the CLI passes stdin's text
    to `parse_manifests`)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ManifestError([Issue("", f"cannot be read: {error.strerror}")], str(path)) from None
    return parse_manifests(text, str(path))
