"""The worker process of `harmonia.server.validation`: reads length-prefixed telemetry
bodies on standard input and writes each one's validation, pickled, on standard output,
until its input closes (the server stopped)."""

from __future__ import annotations

import pickle
import sys
from typing import IO

from harmonia.server.validation import LENGTH, read_frame, validate_batch


def serve(stdin: IO[bytes], stdout: IO[bytes]) -> None:
    while (body := read_frame(stdin)) is not None:
        reply = pickle.dumps(validate_batch(body), protocol=pickle.HIGHEST_PROTOCOL)
        stdout.write(LENGTH.pack(len(reply)) + reply)
        stdout.flush()


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
