"""The default artifact store: files under one directory (``file:///var/harmonia/artifacts``,
or a plain path; the server's default is ``artifacts/`` in its data directory).

An object is written to a temporary file in the store's own ``.partial`` directory and renamed
to its key when whole and flushed: the rename is atomic on one file system, so a reader never
sees half an object, and an upload that fails leaves no file under any key.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, ClassVar
from urllib.parse import unquote, urlsplit

from harmonia.registry.artifacts import CHUNK_BYTES, Digest, StoredObject, check_key
from harmonia.registry.errors import ArtifactNotFound, RegistryError

PARTIAL_DIR = ".partial"


def path_of(uri: str | Path) -> Path:
    """The directory a ``file://`` URI (or a plain path) names."""
    if isinstance(uri, Path):
        return uri
    parts = urlsplit(uri)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise RegistryError(f"{uri}: a file:// URI names a local path (file:///dir)")
        return Path(unquote(parts.path))
    return Path(uri)


class LocalArtifactStore:
    """Artifacts as files under ``root``: the object ``a/b/c`` is the file ``root/a/b/c``."""

    scheme: ClassVar[str] = "file"
    name = "file"

    def __init__(self, uri: str | Path) -> None:
        self.root = path_of(uri)
        self.uri = self.root.resolve().as_uri() if self.root.is_absolute() else str(self.root)
        (self.root / PARTIAL_DIR).mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"LocalArtifactStore({str(self.root)!r})"

    def put(
        self, key: str, chunks: Iterable[bytes], *, max_bytes: int | None = None
    ) -> StoredObject:
        target = self._path(key)
        partial = self.root / PARTIAL_DIR / uuid.uuid4().hex
        digest = Digest(max_bytes)
        try:
            with partial.open("wb") as file:
                for chunk in chunks:
                    digest.update(chunk)
                    file.write(chunk)
                file.flush()
                os.fsync(file.fileno())
            target.parent.mkdir(parents=True, exist_ok=True)
            partial.replace(target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return StoredObject(key, digest.size, digest.sha256)

    def open(self, key: str) -> Iterator[bytes]:
        path = self._path(key)
        try:
            file = path.open("rb")
        except (FileNotFoundError, IsADirectoryError):
            raise ArtifactNotFound(f"{self.uri}/{key}") from None
        return _chunks(file)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def _path(self, key: str) -> Path:
        check_key(key)
        if key.split("/", 1)[0] == PARTIAL_DIR:  # unreachable by the pattern; kept explicit
            raise RegistryError(f"invalid artifact key {key!r}")
        return self.root / key


def _chunks(file: BinaryIO) -> Iterator[bytes]:
    with file:
        while chunk := file.read(CHUNK_BYTES):
            yield chunk
