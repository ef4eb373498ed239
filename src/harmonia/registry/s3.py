"""Artifacts on S3-compatible object storage (AWS S3, MinIO, Ceph RGW) through boto3:
``s3://bucket/prefix``, with the endpoint of a non-AWS server in the options
(``HARMONIA_S3_ENDPOINT_URL``; credentials from boto3's usual chain: ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``~/.aws``...).

Uploads are streamed as a multipart upload of ``part_bytes`` parts (one part in memory at a
time); an object smaller than one part is a single ``PutObject``. An upload that fails or
passes its limit is aborted, so no object and no orphaned parts stay behind. S3 replaces an
object atomically, which is what `ArtifactStore.put` promises. Needs the ``s3`` extra.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, ClassVar
from urllib.parse import urlsplit

from harmonia.registry.artifacts import CHUNK_BYTES, Digest, StoredObject, check_key, rechunk
from harmonia.registry.errors import ArtifactNotFound, RegistryError

#: S3's smallest part is 5 MiB (but the last); 8 MiB is boto3's own default
PART_BYTES = 8 * 1024 * 1024
_MISSING = {"NoSuchKey", "404", "NotFound"}


class S3ArtifactStore:
    """Artifacts as objects of one bucket, under an optional key prefix."""

    scheme: ClassVar[str] = "s3"
    name = "s3"

    def __init__(
        self,
        uri: str,
        *,
        endpoint_url: str | None = None,
        region_name: str | None = None,
        part_bytes: int = PART_BYTES,
        client: Any = None,
    ) -> None:
        parts = urlsplit(uri)
        if parts.scheme != "s3" or not parts.netloc:
            raise RegistryError(f"{uri}: an S3 store's URI is s3://bucket[/prefix]")
        if part_bytes < 5 * 1024 * 1024:
            raise RegistryError(f"part_bytes {part_bytes}: S3 parts are 5 MiB or more")
        self.uri = uri.rstrip("/")
        self.bucket = parts.netloc
        self.prefix = parts.path.strip("/")
        self.part_bytes = part_bytes
        self.client = client or _client(endpoint_url or None, region_name or None)

    def __repr__(self) -> str:
        return f"S3ArtifactStore({self.uri!r})"

    def put(
        self, key: str, chunks: Iterable[bytes], *, max_bytes: int | None = None
    ) -> StoredObject:
        name = self._name(key)
        digest = Digest(max_bytes)
        parts = rechunk(_hashed(chunks, digest), self.part_bytes)
        first = next(parts, b"")
        second = next(parts, None)
        if second is None:  # one part or none: a single PutObject
            self.client.put_object(Bucket=self.bucket, Key=name, Body=first)
            return StoredObject(key, digest.size, digest.sha256)
        upload = self.client.create_multipart_upload(Bucket=self.bucket, Key=name)["UploadId"]
        try:
            done = []
            for number, body in enumerate(_chain(first, second, parts), start=1):
                reply = self.client.upload_part(
                    Bucket=self.bucket, Key=name, UploadId=upload, PartNumber=number, Body=body
                )
                done.append({"ETag": reply["ETag"], "PartNumber": number})
            self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=name, UploadId=upload, MultipartUpload={"Parts": done}
            )
        except BaseException:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=name, UploadId=upload)
            raise
        return StoredObject(key, digest.size, digest.sha256)

    def open(self, key: str) -> Iterator[bytes]:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._name(key))["Body"]
        except Exception as error:
            if _code(error) in _MISSING:
                raise ArtifactNotFound(f"{self.uri}/{key}") from None
            raise
        return _stream(body)

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._name(key))

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._name(key))
        except Exception as error:
            if _code(error) in _MISSING:
                return False
            raise
        return True

    def _name(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key


def _client(endpoint_url: str | None, region_name: str | None) -> Any:
    try:
        import boto3
        from botocore.config import Config
    except ModuleNotFoundError:
        raise RegistryError(
            "s3:// artifact stores need boto3: pip install 'harmonia[s3]'"
        ) from None
    # path-style addressing: MinIO and most S3-compatible servers have no per-bucket DNS
    config = Config(s3={"addressing_style": "path"}, retries={"mode": "standard"})
    return boto3.client(
        "s3", endpoint_url=endpoint_url, region_name=region_name or "us-east-1", config=config
    )


def _code(error: Exception) -> str:
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def _hashed(chunks: Iterable[bytes], digest: Digest) -> Iterator[bytes]:
    for chunk in chunks:
        digest.update(chunk)
        yield chunk


def _chain(first: bytes, second: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield second
    yield from rest


def _stream(body: Any) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(CHUNK_BYTES)
    finally:
        body.close()
