"""Manifests written as one YAML stream and read back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harmonia.orchestration.kubernetes import (
    ManifestError,
    dump_manifests,
    parse_manifests,
    read_manifests,
    write_manifests,
)

DOCS: list[dict[str, Any]] = [
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a"}, "spec": {"x": "1"}},
    {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "a-n"}},
]


def test_a_stream_reads_back_as_written(tmp_path: Path) -> None:
    path = tmp_path / "out" / "manifests.yaml"
    write_manifests(DOCS, path)
    text = path.read_text()
    assert text.startswith("# Kubernetes manifests rendered by Harmonia")
    assert text.count("\n---\n") == 2
    assert read_manifests(path) == DOCS
    assert "'1'" in dump_manifests(DOCS)  # a string that looks like a number stays a string
    assert list(path.parent.iterdir()) == [path]  # no partial file left behind


def test_keys_keep_the_rendered_order() -> None:
    text = dump_manifests(DOCS, header="")
    assert text.index("apiVersion") < text.index("kind") < text.index("metadata")


def test_empty_documents_are_skipped_and_lists_unpacked() -> None:
    text = "---\n---\nkind: List\nitems:\n- {kind: Service}\n- {kind: Deployment}\n"
    assert parse_manifests(text) == [{"kind": "Service"}, {"kind": "Deployment"}]


def test_what_is_not_an_object_is_refused_by_index() -> None:
    with pytest.raises(ManifestError, match=r"(?s)f\.yaml: invalid manifests.*\[1\]: is a str"):
        parse_manifests("kind: Service\n---\njust text\n", "f.yaml")
    with pytest.raises(ManifestError, match="is not YAML"):
        parse_manifests("a: [", "f.yaml")


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"(?s)missing\.yaml.*cannot be read"):
        read_manifests(tmp_path / "missing.yaml")
