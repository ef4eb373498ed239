"""Harmonia's registry over HTTP, for the CLI and for systems that fetch models from a server
(`harmonia.registry.remote.ServerRegistry`): uploads streamed from a file, downloads streamed
to a file and checked against the sha256 the server sends (``X-Checksum-Sha256``) before
they take the file's name, so a damaged or cut-short download never replaces anything.

Needs only httpx (the sdk's dependency): no server, no database.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any, cast

import httpx

from harmonia.registry.errors import ChecksumMismatch, RegistryError

#: the reply header of a download that carries its sha256
CHECKSUM_HEADER = "X-Checksum-Sha256"
CHUNK_BYTES = 1024 * 1024
Progress = Callable[[int], None]


class CatalogClientError(RegistryError):
    """The server refused a request: ``status`` and its ``detail``."""

    def __init__(self, status: int, detail: Any) -> None:
        self.status = status
        self.detail = detail
        if isinstance(detail, list):
            text = "; ".join(f"{d.get('field')}: {d.get('reason')}" for d in detail)
        else:
            text = str(detail)
        super().__init__(f"{status}: {text}")


class CatalogClient:
    """The models and datasets of a Harmonia server, with a domain key (or the admin
    token). ``kind`` is ``model`` or ``dataset``; ``ref`` a number, ``latest``, an alias or a
    label."""

    def __init__(
        self,
        server: str,
        token: str,
        *,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.server = server.rstrip("/")
        self._http = httpx.Client(
            base_url=f"{self.server}/api/v1",
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(timeout, connect=10.0),
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> CatalogClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- versions ---------------------------------------------------------------------------
    def push(
        self,
        domain: str,
        kind: str,
        name: str,
        file: Path,
        metadata: Mapping[str, Any] | None = None,
        *,
        progress: Progress | None = None,
    ) -> dict[str, Any]:
        """Upload ``file`` as the next version of ``name``; ``progress(n)`` is told of every
        ``n`` bytes sent. Returns the version as the server recorded it."""
        with file.open("rb") as raw:
            body = cast(IO[bytes], _Counted(raw, progress))
            reply = self._http.post(
                _versions(domain, kind, name),
                files={"file": (file.name, body, "application/octet-stream")},
                data={"metadata": json.dumps(dict(metadata or {}))},
            )
        return _object(reply)

    def pull(
        self,
        domain: str,
        kind: str,
        name: str,
        ref: str | int,
        target: Path,
        *,
        progress: Progress | None = None,
        on_start: Callable[[int], None] | None = None,
    ) -> dict[str, Any]:
        """Download a version into ``target`` (a file), checked against its sha256 first;
        ``on_start(size)`` when the size is known. Returns the version's description."""
        path = f"{_versions(domain, kind, name)}/{ref}/data"
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, partial = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        try:
            with os.fdopen(handle, "wb") as out, self._http.stream("GET", path) as reply:
                if reply.status_code >= 400:
                    reply.read()
                    _json(reply)
                expected = reply.headers.get(CHECKSUM_HEADER, "")
                size = int(reply.headers.get("Content-Length", "0"))
                if on_start:
                    on_start(size)
                digest = hashlib.sha256()
                try:
                    for chunk in reply.iter_bytes(CHUNK_BYTES):
                        out.write(chunk)
                        digest.update(chunk)
                        if progress:
                            progress(len(chunk))
                except httpx.HTTPError as error:
                    raise RegistryError(
                        f"the download of {domain}/{kind}/{name}@{ref} was cut short ({error}): "
                        "the server found it damaged, or the connection dropped"
                    ) from None
            if not expected or digest.hexdigest() != expected:
                raise ChecksumMismatch(
                    f"{domain}/{kind}/{name}@{ref}", expected, digest.hexdigest()
                )
            Path(partial).replace(target)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise
        return self.version(domain, kind, name, ref)

    def version(self, domain: str, kind: str, name: str, ref: str | int) -> dict[str, Any]:
        return _object(self._http.get(f"{_versions(domain, kind, name)}/{ref}"))

    def versions(self, domain: str, kind: str, name: str, *, limit: int = 1000) -> list[Any]:
        """The versions of ``name``, newest first (none if the domain has no such name)."""
        reply = self._http.get(_versions(domain, kind, name), params={"limit": limit})
        if reply.status_code == 404:
            return []
        return list(_json(reply))

    def search(self, **filters: Any) -> list[Any]:
        """Versions the key may read: ``kind``, ``domain``, ``name``, ``tag``, ``status``,
        ``label``, ``limit``."""
        params = {k: v for k, v in filters.items() if v is not None}
        return list(_json(self._http.get("/catalog", params=params)))

    # -- aliases, promotions, grants, energy ------------------------------------------------
    def set_alias(
        self, domain: str, kind: str, name: str, alias: str, version: int, reason: str = ""
    ) -> dict[str, Any]:
        body = {"version": version, "reason": reason}
        return _object(
            self._http.put(f"{_artifact(domain, kind, name)}/aliases/{alias}", json=body)
        )

    def promote(
        self, domain: str, kind: str, name: str, *, note: str = "", version: int | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"note": note}
        if version is not None:
            body["version"] = version
        return _object(self._http.post(f"{_artifact(domain, kind, name)}/promote", json=body))

    def grant(self, domain: str, kind: str, name: str, to_domain: str) -> list[Any]:
        return list(_json(self._http.put(f"{_artifact(domain, kind, name)}/grants/{to_domain}")))

    def record_energy(
        self, domain: str, kind: str, name: str, ref: str | int, **run: Any
    ) -> dict[str, Any]:
        """Energy spent on a version: ``phase``, ``joules``, ``seconds``, ``source``..."""
        path = f"{_versions(domain, kind, name)}/{ref}/energy"
        return _object(self._http.post(path, json=run))


class _Counted:
    """A file read by httpx's multipart encoder, reporting the bytes it hands over."""

    def __init__(self, raw: IO[bytes], progress: Progress | None) -> None:
        self._raw = raw
        self._progress = progress

    def read(self, size: int = -1) -> bytes:
        chunk = self._raw.read(CHUNK_BYTES if size is None or size < 0 else size)
        if self._progress and chunk:
            self._progress(len(chunk))
        return chunk

    def fileno(self) -> int:  # httpx sizes the body with it (Content-Length, no chunking)
        return self._raw.fileno()

    def tell(self) -> int:
        return self._raw.tell()

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._raw.seek(offset, whence)


def _artifact(domain: str, kind: str, name: str) -> str:
    if kind not in ("model", "dataset"):
        raise RegistryError(f"kind {kind!r}: model or dataset")
    return f"/domains/{domain}/{kind}s/{name}"


def _versions(domain: str, kind: str, name: str) -> str:
    return f"{_artifact(domain, kind, name)}/versions"


def _json(reply: httpx.Response) -> Any:
    if reply.status_code >= 400:
        try:
            detail = reply.json().get("detail")
        except ValueError:
            detail = reply.text
        raise CatalogClientError(reply.status_code, detail)
    return reply.json()


def _object(reply: httpx.Response) -> dict[str, Any]:
    found = _json(reply)
    if not isinstance(found, dict):
        raise RegistryError(f"expected a JSON object from {reply.url}, got {type(found).__name__}")
    return found
