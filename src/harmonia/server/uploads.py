"""Uploads of models and datasets, streamed from the request into an artifact store.

Starlette's ``request.form()`` would spool every file to a temporary file before the route
runs, then the route would copy it: each upload written twice, and its sha256 computed on a
second read. Here the multipart body is parsed as it arrives (python-multipart's push parser)
and each file part's bytes go straight into `ArtifactStore.put`, which hashes them on the
way: one pass, one chunk in memory at a time. Small form fields (metadata, HX-MLOps's
``name``, ``version``...) are kept, within a bound; they may come before or after the file.

The store's ``put`` is blocking (a file, boto3), so it runs in a worker thread that pulls the
body from the event loop a megabyte at a time (`BodyReader`, `body_chunks`).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from anyio import from_thread
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from harmonia.registry.artifacts import CHUNK_BYTES
from harmonia.server.errors import Invalid, TooLarge

#: all the small fields of one form together (text, not files)
MAX_FIELD_BYTES = 1_000_000
MAX_PARTS = 32


class BodyReader:
    """The request body, a megabyte (or less, at the end) per ``read``; b"" when done."""

    def __init__(self, request: Request) -> None:
        self._chunks = request.stream()
        self._done = False

    async def read(self) -> bytes:
        if self._done:
            return b""
        pieces: list[bytes] = []
        size = 0
        while size < CHUNK_BYTES:
            try:
                chunk = await self._chunks.__anext__()
            except (StopAsyncIteration, ClientDisconnect):
                self._done = True
                break
            pieces.append(chunk)
            size += len(chunk)
        return b"".join(pieces)


def body_chunks(reader: BodyReader) -> Iterator[bytes]:
    """The body, from a worker thread (`starlette.concurrency.run_in_threadpool`)."""
    while chunk := from_thread.run(reader.read):
        yield chunk


@dataclass(frozen=True)
class FilePart:
    """A file part of a form: its field name, file name and content type."""

    field: str
    filename: str
    content_type: str


class MultipartForm:
    """A ``multipart/form-data`` body parsed as it is pulled from ``body``: ``events()``
    yields ``("start", FilePart)``, ``("data", bytes)`` and ``("end", FilePart)`` for file
    parts, and keeps text fields in ``fields``."""

    def __init__(self, content_type: str, body: Iterator[bytes]) -> None:
        kind, options = parse_options_header(content_type)
        boundary = options.get(b"boundary")
        if kind != b"multipart/form-data" or not boundary:
            raise Invalid(
                [{"field": "body", "reason": "send multipart/form-data (a file part, fields)"}]
            )
        self.fields: dict[str, str] = {}
        self.files: list[FilePart] = []
        self._body = body
        self._pending: list[tuple[str, Any]] = []
        self._headers: dict[bytes, bytes] = {}
        self._header = b""
        self._value = b""
        self._part: FilePart | None = None
        self._field: str | None = None
        self._text = bytearray()
        self._field_bytes = 0
        self._parts = 0
        callbacks: Any = {
            "on_part_begin": self._begin,
            "on_part_data": self._data,
            "on_part_end": self._end,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
        }
        self._parser = MultipartParser(boundary, callbacks)

    def events(self) -> Iterator[tuple[str, Any]]:
        try:
            for chunk in self._body:
                self._parser.write(chunk)
                yield from self._drain()
            self._parser.finalize()
        except FormParserError as error:
            raise Invalid([{"field": "body", "reason": f"not a multipart form: {error}"}]) from None
        yield from self._drain()
        if self._parts == 0:
            raise Invalid([{"field": "body", "reason": "an empty form: send the file part"}])

    def _drain(self) -> Iterator[tuple[str, Any]]:
        pending, self._pending = self._pending, []
        return iter(pending)

    # -- the parser's callbacks -------------------------------------------------------------
    def _begin(self) -> None:
        self._parts += 1
        if self._parts > MAX_PARTS:
            raise Invalid([{"field": "body", "reason": f"more than {MAX_PARTS} parts"}])
        self._headers = {}

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._header.lower()] = self._value
        self._header = self._value = b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        if filename is None:
            self._part, self._field = None, name
            self._text = bytearray()
            return
        content_type = self._headers.get(b"content-type", b"application/octet-stream")
        self._part = FilePart(
            name, filename.decode("utf-8", "replace"), content_type.decode("latin-1")
        )
        self._field = None
        self.files.append(self._part)
        self._pending.append(("start", self._part))

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._part is not None:
            self._pending.append(("data", bytes(data[start:end])))
            return
        self._field_bytes += end - start
        if self._field_bytes > MAX_FIELD_BYTES:
            raise TooLarge(f"the form's text fields are over {MAX_FIELD_BYTES} bytes")
        self._text += data[start:end]

    def _end(self) -> None:
        if self._part is not None:
            self._pending.append(("end", self._part))
        elif self._field is not None:
            self.fields[self._field] = self._text.decode("utf-8", "replace")
        self._part, self._field = None, None


def file_bytes(form: MultipartForm, field: str) -> Iterator[bytes]:
    """The bytes of the form's file part ``field`` (parsing the whole body, so that fields
    after the file are read too); another file part is refused."""
    inside = False
    for event, value in form.events():
        if event == "start":
            if value.field != field or any(f.field == field for f in form.files[:-1]):
                raise Invalid(
                    [{"field": value.field, "reason": f"one file part is taken: {field!r}"}]
                )
            inside = True
        elif event == "end":
            inside = False
        elif inside:
            yield value


def zipped_files(form: MultipartForm, members: Mapping[str, str]) -> Iterator[bytes]:
    """A zip (stored, not compressed: models and datasets rarely shrink, and time matters)
    of the form's file parts, each named ``members[field]``, streamed as it is written."""
    pipe = _Pipe()
    archive = zipfile.ZipFile(pipe, "w", zipfile.ZIP_STORED, allowZip64=True)
    entry: Any = None
    seen: set[str] = set()
    for event, value in form.events():
        if event == "start":
            if value.field not in members or value.field in seen:
                known = ", ".join(members)
                raise Invalid([{"field": value.field, "reason": f"file parts taken: {known}"}])
            seen.add(value.field)
            entry = archive.open(members[value.field], "w", force_zip64=True)
        elif event == "end":
            entry.close()
            entry = None
        elif entry is not None:
            entry.write(value)
        yield from pipe.drain()
    archive.close()
    yield from pipe.drain()


class _Pipe(io.RawIOBase):
    """A write-only stream whose bytes are taken back out (``drain``): zipfile writes an
    archive to it, without seeking, and the upload sends what it wrote so far."""

    def __init__(self) -> None:
        self._pieces: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._pieces.append(bytes(data))
        return len(data)

    def drain(self) -> Iterator[bytes]:
        pieces, self._pieces = self._pieces, []
        return iter(pieces)


def form_field(form: MultipartForm, name: str, *, required: bool = True) -> str | None:
    """A text field of the form, or `Invalid` naming it when it is required and missing."""
    value = form.fields.get(name)
    if value is None and required:
        raise Invalid([{"field": name, "reason": "required"}])
    return value
