"""Every artifact store passes the public conformance kit (`harmonia.testing`): the local
file system, and S3 through boto3 against moto's S3 server running locally."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from harmonia.plugins import ARTIFACT_STORES, plugin_names
from harmonia.testing import Check, artifact_store_checks
from moto_s3 import s3_bucket, s3_endpoint  # noqa: F401 (fixtures)

with tempfile.TemporaryDirectory() as _names:
    CHECKS = [c.name for c in artifact_store_checks(Path(_names).as_uri())]


def test_both_stores_are_registered() -> None:
    assert {"file", "s3"} <= set(plugin_names(ARTIFACT_STORES))


def _run(checks: list[Check], name: str) -> None:
    [check] = [c for c in checks if c.name == name]
    check()


@pytest.mark.parametrize("name", CHECKS)
def test_local_store(name: str, tmp_path: Path) -> None:
    _run(artifact_store_checks(tmp_path.as_uri()), name)


@pytest.mark.parametrize("name", CHECKS)
def test_s3_store(name: str, s3_bucket: str, s3_endpoint: str) -> None:  # noqa: F811
    options = {"s3": {"endpoint_url": s3_endpoint}}
    _run(artifact_store_checks(f"{s3_bucket}/under/a/prefix", options=options), name)


def test_a_failed_check_names_the_store_and_the_check(tmp_path: Path) -> None:
    class Forgetful:
        """Says it stored the bytes, and keeps none."""

        scheme = "file"
        uri = "file:///nowhere"

        def put(self, key, chunks, *, max_bytes=None):  # type: ignore[no-untyped-def]
            from harmonia.registry.artifacts import Digest, StoredObject

            digest = Digest(max_bytes)
            for chunk in chunks:
                digest.update(chunk)
            return StoredObject(key, digest.size, digest.sha256)

        def open(self, key):  # type: ignore[no-untyped-def]
            return iter([b""])

        def delete(self, key):  # type: ignore[no-untyped-def]
            pass

        def exists(self, key):  # type: ignore[no-untyped-def]
            return False

    checks = artifact_store_checks(Forgetful())
    with pytest.raises(AssertionError, match="Forgetful: check round_trip_with_size_and_sha256"):
        _run(checks, "round_trip_with_size_and_sha256")
