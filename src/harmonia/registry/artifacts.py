"""Where the bytes of models and datasets live: the `ArtifactStore` protocol, chosen by URI
scheme (MLflow's way) among the plugins of the entry-point group ``harmonia.artifact_stores``
(``file`` on local disk, ``s3`` on S3-compatible object storage, or a user's own).

A store moves bytes and nothing else: metadata, versions and checksums are the catalog's, in
the SQL store. Every transfer is streamed in chunks, so that a 200 MB model never sits in
memory whole; the sha256 and the size are computed by the store while the bytes go by, since
a second read to hash them would double the cost of every upload.

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as tmp:
...     store = open_artifact_store(f"file://{tmp}")
...     stored = store.put("vendor/models/svm/1", [b"weights", b"..."])
...     print(stored.size, stored.sha256[:12], b"".join(store.open("vendor/models/svm/1")))
10 0a6ebce91850 b'weights...'
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable
from urllib.parse import urlsplit

from harmonia.registry.errors import ArtifactTooLarge, ChecksumMismatch, RegistryError

#: the size of the chunks stores read and write
CHUNK_BYTES = 1024 * 1024
#: a key: ``/``-separated segments of safe names (never ``..``, never empty)
KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}(/[A-Za-z0-9][A-Za-z0-9_.-]{0,127}){0,7}$"
_KEY = re.compile(KEY_PATTERN)


@dataclass(frozen=True)
class StoredObject:
    """What a store says about the object it has just written."""

    key: str
    size: int
    sha256: str


@runtime_checkable
class ArtifactStore(Protocol):
    """Keeps artifacts' bytes under keys (``vendor/models/lstm/<uuid>``).

    A store is built from its URI and options (``Store(uri, **options)``); ``uri`` says
    where it keeps its objects. ``put`` replaces an object atomically: a reader sees the old
    bytes or the new, never part of either, and an upload that fails or passes ``max_bytes``
    leaves nothing behind.
    """

    #: the URI scheme it answers to (``file``, ``s3``)
    scheme: ClassVar[str]
    uri: str

    def put(
        self, key: str, chunks: Iterable[bytes], *, max_bytes: int | None = None
    ) -> StoredObject:
        """Stream ``chunks`` into the object ``key``; its size and sha256 are computed on the
        way. Over ``max_bytes``: `ArtifactTooLarge`, and nothing is kept."""
        ...

    def open(self, key: str) -> Iterator[bytes]:
        """The object's bytes in chunks; `ArtifactNotFound` at once if there is none."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object; removing one that is not there is not an error."""
        ...

    def exists(self, key: str) -> bool: ...


def check_key(key: object) -> str:
    """``key`` if it is a safe object key, else `RegistryError` (no path is built before)."""
    if not isinstance(key, str) or _KEY.fullmatch(key) is None:
        raise RegistryError(f"invalid artifact key {key!r}: it must match {KEY_PATTERN}")
    return key


class Digest:
    """The size and sha256 of bytes as they stream by, refusing them past ``max_bytes``."""

    def __init__(self, max_bytes: int | None = None) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._hash = hashlib.sha256()

    def update(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.max_bytes is not None and self.size > self.max_bytes:
            raise ArtifactTooLarge(self.max_bytes)
        self._hash.update(chunk)

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()


def verified(chunks: Iterable[bytes], sha256: str, size: int, what: str) -> Iterator[bytes]:
    """``chunks`` passed through, with `ChecksumMismatch` raised after the last one if their
    sha256 or size is not the stored one (or at once, when more bytes come than were
    stored). A reader that needs the whole artifact intact keeps nothing before the end."""
    digest = Digest()
    for chunk in chunks:
        digest.update(chunk)
        if digest.size > size:
            raise ChecksumMismatch(what, sha256, f"(more than {size} bytes)")
        yield chunk
    if digest.size != size or digest.sha256 != sha256:
        raise ChecksumMismatch(what, sha256, digest.sha256)


def rechunk(chunks: Iterable[bytes], size: int = CHUNK_BYTES) -> Iterator[bytes]:
    """``chunks`` regrouped into pieces of ``size`` bytes (the last one shorter): the parts of
    a multipart upload, whatever sizes the caller's chunks come in."""
    buffer = bytearray()
    for chunk in chunks:
        buffer += chunk
        while len(buffer) >= size:
            yield bytes(buffer[:size])
            del buffer[:size]
    if buffer:
        yield bytes(buffer)


def scheme_of(uri: str) -> str:
    """The scheme of a store URI; a plain path is ``file``."""
    scheme = urlsplit(uri).scheme
    return "file" if scheme == "" or len(scheme) == 1 else scheme  # ``C:\\`` is a path


def open_artifact_store(
    uri: str, options: Mapping[str, Mapping[str, Any]] | None = None
) -> ArtifactStore:
    """The store for ``uri`` (``file:///var/harmonia/artifacts``, ``s3://bucket/prefix``, a
    plain path), built by the plugin registered under its scheme with ``options[scheme]``
    (e.g. ``{"s3": {"endpoint_url": "http://minio:9000"}}``)."""
    from harmonia.plugins import ARTIFACT_STORES, load_plugin

    scheme = scheme_of(uri)
    factory = load_plugin(ARTIFACT_STORES, scheme)
    store: ArtifactStore = factory(uri, **dict((options or {}).get(scheme, {})))
    return store
