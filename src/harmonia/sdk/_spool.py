"""`Spool`: telemetry batches the probe could not send, kept on disk until the server answers.

Memory alone cannot ride out a long outage: the buffer is bounded, and a managed process
that restarts loses it. With a spool, a batch the probe gave up retrying, and the batches
queued behind a failing one, are written to files in one directory and sent later, oldest
first, by this process or, after a restart, by the next probe given that directory. Each
file keeps its batch's idempotency key, so a batch whose reply was lost is not stored twice
when it is sent again from the spool.

The directory is bounded in bytes. A batch that would pass the bound makes room by deleting
the oldest files, because fresh data matters most to an adapting server (the memory buffer
evicts the same way); their samples are reported to ``on_drop``, never lost silently. A file
is written under a temporary name and renamed, so a crash of the process leaves the whole
batch or nothing (a temporary file left by a crash is removed at start). Files are not
synced: the spool is for outages of the server and restarts of the process, and an fsync
per batch would make a closing probe's last writes slow; a power cut may lose them.

One directory belongs to one probe, and only the probe's sender thread uses the spool.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harmonia.sdk._wire import Batch

FILE_NAME = re.compile(r"^(\d{16})-(\d+)\.json$")
"""``<seq>-<samples>.json``: the order and size of a batch are known without reading it."""

TEMPORARY = ".tmp"
"""Suffix of a file being written; such a file is incomplete and is deleted at start."""

DropHandler = Callable[[int, str], None]
"""``(samples, reason)``: told about samples the spool lost (evicted, unreadable, unwritable)."""


@dataclass(frozen=True)
class _Entry:
    """What the spool knows of one file without reading it."""

    seq: int
    samples: int
    size: int
    path: Path


class Spool:
    """Batches on disk under ``directory``, at most ``max_bytes`` in all, oldest first."""

    def __init__(self, directory: Path, max_bytes: int, on_drop: DropHandler) -> None:
        if max_bytes < 1:
            raise ValueError("the spool's max_bytes must be >= 1")
        self.directory = directory
        self.max_bytes = max_bytes
        self._on_drop = on_drop
        self._entries: dict[int, _Entry] = {}  # in seq order
        self._bytes = 0
        directory.mkdir(parents=True, exist_ok=True)
        for entry in sorted(self._scan(), key=lambda entry: entry.seq):
            self._add(entry)

    def __len__(self) -> int:
        """The number of batches spooled."""
        return len(self._entries)

    def __contains__(self, seq: object) -> bool:
        return seq in self._entries

    @property
    def size(self) -> int:
        """Bytes spooled."""
        return self._bytes

    @property
    def samples(self) -> int:
        """Samples spooled."""
        return sum(entry.samples for entry in self._entries.values())

    @property
    def next_seq(self) -> int:
        """One past the newest spooled batch: batches formed now sort after those on disk."""
        return max(self._entries, default=-1) + 1

    def oldest(self) -> Batch | None:
        """The oldest batch, read back; None when the spool is empty. An unreadable file
        (truncated, edited) is deleted and its samples reported lost, so one bad file cannot
        stop the spool from draining."""
        while self._entries:
            entry = next(iter(self._entries.values()))
            try:
                return _read(entry)
            except (OSError, ValueError, KeyError, TypeError) as error:
                self._delete(entry)
                self._on_drop(entry.samples, f"unreadable spool file {entry.path}: {error}")
        return None

    def put(self, batch: Batch, *, keep: int | None = None) -> bool:
        """Write ``batch``; False when it could not be: bigger than the whole spool, or the
        disk failed (its samples are reported to ``on_drop``). Room is made by deleting the
        oldest batches, but never the batch ``keep`` (the one being sent)."""
        count = len(batch.samples)
        try:
            data = _encode(batch)
        except (TypeError, ValueError) as error:  # to_wire makes this unlikely
            self._on_drop(count, f"cannot encode the batch for the spool: {error}")
            return False
        if not self._make_room(len(data), keep):
            self._on_drop(count, f"the spool {self.directory} is full ({self.max_bytes} bytes)")
            return False
        path = self.directory / f"{batch.seq:016d}-{count}.json"
        try:
            _write_atomically(path, data)
        except OSError as error:
            self._on_drop(count, f"cannot write to the spool {self.directory}: {error}")
            return False
        self._add(_Entry(batch.seq, count, len(data), path))
        return True

    def remove(self, seq: int) -> None:
        """Forget batch ``seq`` (it was sent, or refused for good)."""
        entry = self._entries.get(seq)
        if entry is not None:
            self._delete(entry)

    def _make_room(self, size: int, keep: int | None) -> bool:
        """Delete the oldest batches (but ``keep``) until ``size`` more bytes fit; False,
        deleting nothing, when they cannot fit even then."""
        kept = self._entries[keep].size if keep in self._entries else 0
        if kept + size > self.max_bytes:
            return False
        for victim in list(self._entries.values()):
            if self._bytes + size <= self.max_bytes:
                break
            if victim.seq != keep:
                self._delete(victim)
                self._on_drop(victim.samples, f"the spool {self.directory} is full")
        return True

    def _scan(self) -> list[_Entry]:
        """The batches already on disk (a previous run's); incomplete writes are deleted."""
        entries = []
        for path in self.directory.iterdir():
            if path.name.endswith(TEMPORARY):
                path.unlink(missing_ok=True)
            elif match := FILE_NAME.match(path.name):
                seq, samples = int(match[1]), int(match[2])
                entries.append(_Entry(seq, samples, path.stat().st_size, path))
        return entries

    def _add(self, entry: _Entry) -> None:
        newest = next(reversed(self._entries), -1)
        self._entries[entry.seq] = entry
        self._bytes += entry.size
        if entry.seq < newest:  # a batch given up on after the ones queued behind it
            self._entries = dict(sorted(self._entries.items()))

    def _delete(self, entry: _Entry) -> None:
        del self._entries[entry.seq]
        self._bytes -= entry.size
        entry.path.unlink(missing_ok=True)


def _encode(batch: Batch) -> bytes:
    """A batch as the JSON of its file (its ``seq`` is in the file's name)."""
    document = {
        "app": batch.app,
        "instance": batch.instance,
        "key": batch.key,
        "samples": batch.samples,
    }
    return json.dumps(document, separators=(",", ":"), allow_nan=False).encode()


def _read(entry: _Entry) -> Batch:
    """The batch in ``entry``'s file; OSError, ValueError, KeyError or TypeError if it is
    missing or not what `_encode` wrote."""
    document: dict[str, Any] = json.loads(entry.path.read_bytes())
    samples = document["samples"]
    if not isinstance(samples, list) or not all(isinstance(s, dict) for s in samples):
        raise TypeError("samples must be a list of objects")
    return Batch(
        entry.seq, str(document["app"]), str(document["instance"]), str(document["key"]), samples
    )


def _write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a crash leaves the whole file or none of it."""
    temporary = path.with_name(f".{path.name}{TEMPORARY}")
    try:
        temporary.write_bytes(data)
        temporary.replace(path)
    except OSError:
        temporary.unlink(missing_ok=True)
        raise
