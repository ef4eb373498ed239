"""Big telemetry batches validated in a worker process, so that no request holds the GIL
for long.

pydantic-core validates a whole JSON body in one C call that keeps the GIL: for a batch of
10,000 samples that is 150-400 ms on a small VM, during which the event loop answers
nothing, ``/healthz`` included. A body over `BIG_BODY_BYTES` is therefore validated in a
worker process, which hands the samples back in pickled chunks: unpickling one chunk is a
short C call, and between chunks the event loop gets its turn. Small bodies (the sdk's
batches of 1,000 samples are about 250 kB) stay in the process: the hop would cost more.
"""

from __future__ import annotations

import logging
import os
import pickle
import struct
import subprocess
import sys
import threading
from queue import SimpleQueue
from typing import IO, Any

from pydantic import ValidationError

logger = logging.getLogger("harmonia.server.validation")

BIG_BODY_BYTES = 512 * 1024
CHUNK_SAMPLES = 250
LENGTH = struct.Struct("!Q")


def validate_batch(body: bytes) -> tuple[bool, Any]:
    """``(True, (instance, [pickled chunks of samples]))``, or ``(False, field errors)``.
    What a worker process does with one body."""
    from harmonia.server.schemas import BATCH, field_errors

    try:
        batch = BATCH.validate_json(body)
    except ValidationError as error:
        return False, field_errors(error)
    samples = batch["samples"]
    chunks = [
        pickle.dumps(samples[i : i + CHUNK_SAMPLES], protocol=pickle.HIGHEST_PROTOCOL)
        for i in range(0, len(samples), CHUNK_SAMPLES)
    ]
    return True, (batch.get("instance"), chunks)


def validate_columns(body: bytes | dict[str, Any]) -> dict[str, Any] | None:
    """The batch as `harmonia.server.schemas.ColumnBatchIn` validates it, or None if it is
    not one (no top-level ``columns``: the row form). Always in this process, whatever the
    body's size: pydantic-core checks columns of numbers in one quick pass (about 1.5 µs a
    sample, against 6-10 µs for the rows), so even the biggest batch holds the GIL for
    milliseconds, not the hundreds the worker processes spare the event loop for rows."""
    from harmonia.server.schemas import COLUMN_BATCH

    if isinstance(body, bytes):
        if b'"columns"' not in body:  # a quick scan: most row batches never say it
            return None
    elif "columns" not in body:
        return None
    try:
        return dict(
            COLUMN_BATCH.validate_json(body)
            if isinstance(body, bytes)
            else COLUMN_BATCH.validate_python(body, strict=False)
        )
    except ValidationError as error:
        if any(e["type"] == "missing" and tuple(e["loc"]) == ("columns",) for e in error.errors()):
            return None  # "columns" only appeared inside: a batch of rows
        raise


class _Worker:
    """One worker process (`harmonia.server.validation_worker`), spoken to over its
    standard input and output: a length-prefixed body in, a length-prefixed pickle out.
    A process of its own rather than multiprocessing's: that would import the embedding
    program's ``__main__`` again in the child."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "harmonia.server.validation_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )

    def call(self, body: bytes) -> tuple[bool, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(LENGTH.pack(len(body)) + body)
        self.process.stdin.flush()
        reply = read_frame(self.process.stdout)
        if reply is None:
            raise BrokenPipeError("the validation worker ended")
        result: tuple[bool, Any] = pickle.loads(reply)  # our own child's answer
        return result

    def close(self) -> None:
        self.process.kill()
        self.process.wait()


def read_frame(stream: IO[bytes]) -> bytes | None:
    head = stream.read(LENGTH.size)
    if len(head) < LENGTH.size:
        return None
    (size,) = LENGTH.unpack(head)
    data = stream.read(size)
    return data if len(data) == size else None


class BatchValidator:
    """Validates telemetry bodies: small ones here, big ones in worker processes (started
    on the first big body, and again if one dies)."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or max(1, min(2, (os.cpu_count() or 1) - 1))
        self._idle: SimpleQueue[_Worker] = SimpleQueue()
        self._started = 0
        self._lock = threading.Lock()
        self._all: list[_Worker] = []

    def validate(self, body: bytes) -> dict[str, Any]:
        """The batch as `harmonia.server.schemas.BatchIn` validates it, or as
        `ColumnBatchIn` (with ``columns`` instead of ``samples``); raises
        ``ValidationError`` (small bodies, columns) or `BatchInvalid` (big ones)."""
        from harmonia.server.schemas import BATCH

        columns = validate_columns(body)
        if columns is not None:
            return columns
        if len(body) <= BIG_BODY_BYTES:
            return dict(BATCH.validate_json(body))
        ok, result = self._in_worker(body)
        if not ok:
            raise BatchInvalid(result)
        instance, chunks = result
        samples: list[dict[str, Any]] = []
        for chunk in chunks:  # one short GIL hold per chunk
            samples.extend(pickle.loads(chunk))
        batch: dict[str, Any] = {"samples": samples}
        if instance is not None:
            batch["instance"] = instance
        return batch

    def close(self) -> None:
        with self._lock:
            workers, self._all = self._all, []
        for worker in workers:
            worker.close()

    def _in_worker(self, body: bytes) -> tuple[bool, Any]:
        for attempt in range(2):
            worker = self._take()
            try:
                result = worker.call(body)
            except OSError:
                logger.warning("a validation worker died; starting another")
                self._discard(worker)
                if attempt:
                    raise
                continue
            self._idle.put(worker)
            return result
        raise AssertionError("unreachable")

    def _take(self) -> _Worker:
        with self._lock:
            if self._idle.empty() and self._started < self.workers:
                self._started += 1
                worker = _Worker()
                self._all.append(worker)
                return worker
        return self._idle.get()  # all busy: wait for one

    def _discard(self, worker: _Worker) -> None:
        worker.close()
        with self._lock:
            self._started -= 1
            if worker in self._all:
                self._all.remove(worker)


class BatchInvalid(ValueError):
    """A big batch that did not validate: ``issues`` as `field_errors` gives them."""

    def __init__(self, issues: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(issues)} invalid fields")
        self.issues = issues
