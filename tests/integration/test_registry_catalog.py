"""The registry's `Catalog` on both databases and both artifact stores: version numbers that
concurrent uploads never share, a deleted number never given again, damage detected on S3
too, and energy read by Harmonia's own meters."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from databases import BACKENDS, database

from harmonia.energy import EstimateMeter
from harmonia.registry.artifacts import ArtifactStore, open_artifact_store
from harmonia.registry.catalog import Catalog
from harmonia.registry.errors import ChecksumMismatch
from harmonia.registry.local import LocalArtifactStore
from harmonia.registry.metadata import VersionMetadata
from harmonia.server.fields import REASON_MAX_CHARS
from harmonia.store import Conflict, Store
from moto_s3 import s3_bucket, s3_endpoint  # noqa: F401 (fixtures)

UPLOADERS = 8
EACH = 5


def _catalog(url: str, artifacts: ArtifactStore) -> Catalog:
    store = Store(url)
    store.create_org("acme", by="admin")
    store.create_domain("vendor", "acme", by="admin")
    return Catalog(store, artifacts)


@pytest.fixture(params=BACKENDS)
def catalog(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Catalog]:
    with database(request.param, tmp_path) as url:
        made = _catalog(url, LocalArtifactStore(tmp_path / "artifacts"))
        yield made
        made.store.close()


def test_concurrent_uploads_get_distinct_increasing_versions(catalog: Catalog) -> None:
    """Eight uploaders at once, the first of them creating the model: forty versions,
    numbered 1 to 40, each with its own bytes."""
    start = threading.Barrier(UPLOADERS)
    numbers: list[tuple[int, bytes]] = []
    errors: list[BaseException] = []

    def upload(worker: int) -> None:
        try:
            start.wait()
            for i in range(EACH):
                data = f"worker {worker} upload {i}".encode()
                found = catalog.push("vendor", "model", "lstm", [data], by=f"w{worker}")
                numbers.append((found.version, data))
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=upload, args=(w,)) for w in range(UPLOADERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(n for n, _ in numbers) == list(range(1, UPLOADERS * EACH + 1))
    for number, data in numbers:
        found = catalog.version("vendor", "model", "lstm", number)
        assert b"".join(catalog.open(found)) == data
    assert catalog.version("vendor", "model", "lstm", "latest").version == UPLOADERS * EACH


def test_a_deleted_number_is_never_given_again(catalog: Catalog) -> None:
    for data in (b"one", b"two"):
        catalog.push("vendor", "model", "svm", [data], by="admin")
    catalog.set_alias("vendor", "model", "svm", "staging", 2, by="admin")
    with pytest.raises(Conflict, match="staging"):
        catalog.delete("vendor", "model", "svm", 2, by="admin")
    catalog.set_alias("vendor", "model", "svm", "staging", 1, by="admin")
    removed = catalog.delete("vendor", "model", "svm", 2, by="admin")
    assert not catalog.artifacts.exists(removed.location)
    assert catalog.push("vendor", "model", "svm", [b"three"], by="admin").version == 3


def test_an_alias_move_keeps_a_reason_as_long_as_the_api_accepts(catalog: Catalog) -> None:
    """The API takes a reason (and an approval's note) of up to 2000 characters; PostgreSQL
    refused a move's reason over 500 (a 500 error found by the fuzzer), and a promotion cut
    the approver's note short."""
    longest = REASON_MAX_CHARS
    catalog.push("vendor", "model", "svm", [b"one"], by="admin")
    catalog.set_alias("vendor", "model", "svm", "staging", 1, by="admin", reason="r" * longest)
    catalog.promote("vendor", "model", "svm", approver="admin", note="n" * longest)
    moves = catalog.store.alias_history("vendor", "model", "svm")
    reasons = sorted(move.reason for move in moves)
    assert reasons == sorted(["r" * longest, "promoted from staging: " + "n" * longest])


def test_a_meter_measures_an_evaluation_into_the_version(catalog: Catalog) -> None:
    found = catalog.push("vendor", "model", "lstm", [b"w"], VersionMetadata(), by="admin")
    with catalog.measure(found, "evaluation", EstimateMeter(), by="admin"):
        sum(i * i for i in range(20_000))
    energy = catalog.energy(found)
    [run] = energy.runs
    assert (run.phase, run.source, run.recorded_by) == ("evaluation", "estimate", "admin")
    assert energy.evaluation_j == run.joules > 0


def test_the_s3_store_serves_the_catalog_and_detects_damage(
    tmp_path: Path,
    s3_bucket: str,  # noqa: F811
    s3_endpoint: str,  # noqa: F811
) -> None:
    artifacts = open_artifact_store(f"{s3_bucket}/harmonia", {"s3": {"endpoint_url": s3_endpoint}})
    catalog = _catalog(f"sqlite:///{tmp_path / 'harmonia.db'}", artifacts)
    data = bytes(range(256)) * 50_000  # 12.8 MB: a multipart upload
    found = catalog.push(
        "vendor", "model", "vision", iter([data[:5_000_000], data[5_000_000:]]), by="admin"
    )
    assert found.sha256 == hashlib.sha256(data).hexdigest()
    assert b"".join(catalog.open(found)) == data
    artifacts.put(found.location, [data[:-1] + b"\x00"])  # damaged where it is kept
    with pytest.raises(ChecksumMismatch, match="damaged artifact"):
        catalog.verify(found)
    catalog.store.close()
