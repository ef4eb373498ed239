"""The conformance checks of an artifact store (entry-point group
``harmonia.artifact_stores``, one plugin per URI scheme).

Every check writes under its own fresh key prefix, so the checks may run against a bucket or
directory that holds other objects, and leave nothing behind when they pass.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterator, Mapping
from functools import partial
from typing import Any

from harmonia.plugins import ARTIFACT_STORES
from harmonia.registry.artifacts import (
    CHUNK_BYTES,
    ArtifactStore,
    open_artifact_store,
    scheme_of,
)
from harmonia.registry.errors import ArtifactNotFound, ArtifactTooLarge, RegistryError
from harmonia.testing._check import Check, check_registered, raises, run_all

Factory = Callable[[], ArtifactStore]
#: past one multipart part of the s3 store (8 MiB): a streamed upload in several parts
LARGE_BYTES = 12 * 1024 * 1024 + 7
#: the largest piece ``open`` may yield: what a reader holds in memory at once
MAX_CHUNK_BYTES = 8 * 1024 * 1024


class _Failure(LookupError):
    """Raised by a check's chunk iterator mid-upload, and by nothing else."""


def _key(what: str) -> str:
    return f"conformance/{uuid.uuid4().hex}/{what}"


def _read(store: ArtifactStore, key: str) -> bytes:
    return b"".join(store.open(key))


_BLOCK = bytes(range(251)) * (CHUNK_BYTES // 251 + 2)


def _pattern(size: int) -> Iterator[bytes]:
    """``size`` bytes that are not all alike, generated in uneven chunks (never whole)."""
    sent = 0
    step = CHUNK_BYTES // 3 + 11
    while sent < size:
        n = min(step, size - sent)
        start = sent % 251
        yield _BLOCK[start : start + n]
        sent += n


def _is_an_artifact_store(store: ArtifactStore) -> None:
    assert isinstance(store, ArtifactStore), f"{store!r} does not satisfy ArtifactStore"
    assert isinstance(store.scheme, str) and store.scheme, "scheme must be a non-empty string"
    assert isinstance(store.uri, str) and store.uri, "uri must be a non-empty string"


def _round_trip_with_size_and_sha256(store: ArtifactStore) -> None:
    key = _key("model.bin")
    chunks = [b"harmonia", b"", b"\x00\xff" * 1000, b"end"]
    data = b"".join(chunks)
    stored = store.put(key, iter(chunks))
    try:
        assert stored.key == key, f"stored under {stored.key!r}, asked for {key!r}"
        assert stored.size == len(data), f"size {stored.size}, wrote {len(data)} bytes"
        expected = hashlib.sha256(data).hexdigest()
        assert stored.sha256 == expected, f"sha256 {stored.sha256}, expected {expected}"
        assert store.exists(key), "exists() is False for an object just written"
        assert _read(store, key) == data, "read back other bytes than were written"
    finally:
        store.delete(key)


def _empty_object(store: ArtifactStore) -> None:
    key = _key("empty")
    stored = store.put(key, iter(()))
    try:
        assert stored.size == 0, f"size {stored.size} for no bytes"
        assert stored.sha256 == hashlib.sha256(b"").hexdigest(), "sha256 of no bytes differs"
        assert _read(store, key) == b"", "an empty object read back non-empty"
    finally:
        store.delete(key)


def _large_object_streamed_both_ways(store: ArtifactStore) -> None:
    key = _key("large.bin")
    expected = hashlib.sha256()
    for chunk in _pattern(LARGE_BYTES):
        expected.update(chunk)
    stored = store.put(key, _pattern(LARGE_BYTES))
    try:
        assert stored.size == LARGE_BYTES, f"size {stored.size}, wrote {LARGE_BYTES}"
        assert stored.sha256 == expected.hexdigest(), "sha256 of a large object differs"
        read = hashlib.sha256()
        count = 0
        pieces = 0
        for chunk in store.open(key):
            assert len(chunk) <= MAX_CHUNK_BYTES, (
                f"open() yielded a chunk of {len(chunk)} bytes: stream it in pieces"
            )
            read.update(chunk)
            count += len(chunk)
            pieces += 1
        assert count == LARGE_BYTES, f"read back {count} bytes of {LARGE_BYTES}"
        assert read.hexdigest() == expected.hexdigest(), "read back other bytes"
        assert pieces > 1, "a 12 MiB object came back in one chunk: stream it"
    finally:
        store.delete(key)


def _put_replaces_an_object_whole(store: ArtifactStore) -> None:
    key = _key("replaced")
    store.put(key, [b"first version, longer than the second"])
    try:
        stored = store.put(key, [b"second"])
        assert stored.size == 6, f"size {stored.size} after replacing"
        assert _read(store, key) == b"second", "replacing left other bytes"
    finally:
        store.delete(key)


def _over_the_limit_keeps_nothing(store: ArtifactStore) -> None:
    fresh, existing = _key("fresh"), _key("existing")
    with raises(ArtifactTooLarge):
        store.put(fresh, _pattern(3 * CHUNK_BYTES), max_bytes=CHUNK_BYTES)
    assert not store.exists(fresh), "an upload over its limit left an object"
    store.put(existing, [b"kept"])
    try:
        with raises(ArtifactTooLarge):
            store.put(existing, _pattern(3 * CHUNK_BYTES), max_bytes=CHUNK_BYTES)
        assert _read(store, existing) == b"kept", "an upload over its limit damaged the object"
        exact = store.put(_key("exact"), [b"x" * 10], max_bytes=10)
        store.delete(exact.key)
    finally:
        store.delete(existing)


def _failed_upload_keeps_nothing(store: ArtifactStore) -> None:
    def failing() -> Iterator[bytes]:
        yield from _pattern(2 * CHUNK_BYTES)
        raise _Failure("the client went away")

    key = _key("failed")
    with raises(_Failure):
        store.put(key, failing())
    assert not store.exists(key), "a failed upload left an object"


def _missing_object(store: ArtifactStore) -> None:
    key = _key("missing")
    assert not store.exists(key), "exists() is True for a key never written"
    with raises(ArtifactNotFound):
        store.open(key)
    store.delete(key)  # deleting nothing is not an error


def _delete_removes(store: ArtifactStore) -> None:
    key = _key("deleted")
    store.put(key, [b"bytes"])
    store.delete(key)
    assert not store.exists(key), "exists() is True after delete()"
    with raises(ArtifactNotFound):
        store.open(key)


def _unsafe_keys_are_refused(store: ArtifactStore) -> None:
    for key in ("../escape", "a/../../b", "/absolute", "a//b", "", "a/.hidden", "a\x00b"):
        with raises(RegistryError, match="invalid artifact key"):
            store.put(key, [b"x"])


_CHECKS = [
    _is_an_artifact_store,
    _round_trip_with_size_and_sha256,
    _empty_object,
    _large_object_streamed_both_ways,
    _put_replaces_an_object_whole,
    _over_the_limit_keeps_nothing,
    _failed_upload_keeps_nothing,
    _missing_object,
    _delete_removes,
    _unsafe_keys_are_refused,
]


def artifact_store_checks(
    store: str | ArtifactStore | Factory, *, options: Mapping[str, Mapping[str, Any]] | None = None
) -> list[Check]:
    """Every conformance check of one artifact store, each a `Check` to call.

    ``store``: a URI (``file:///tmp/x``, ``s3://bucket/prefix``), opened through the plugin
    registered for its scheme with ``options`` (whose registration is checked too); an
    instance; or a factory called with no arguments.
    """
    if isinstance(store, str):
        instance: ArtifactStore = open_artifact_store(store, options)
        label = scheme_of(store)
    elif isinstance(store, ArtifactStore) and not isinstance(store, type):
        instance, label = store, type(store).__qualname__
    else:
        instance = store()
        label = type(instance).__qualname__
    checks = []
    if isinstance(store, str):
        cls = type(instance)
        checks.append(
            Check(
                label,
                "registered_under_its_scheme",
                partial(check_registered, ARTIFACT_STORES, cls, scheme_of(store)),
            )
        )
    checks += [Check(label, c.__name__.lstrip("_"), partial(c, instance)) for c in _CHECKS]
    return checks


def check_artifact_store(
    store: str | ArtifactStore | Factory, *, options: Mapping[str, Mapping[str, Any]] | None = None
) -> None:
    """Run every conformance check on one artifact store; the first failure raises an
    `AssertionError` naming the store and the check. Arguments as `artifact_store_checks`."""
    run_all(artifact_store_checks(store, options=options))
