"""File primitives and input checks of the registry.

Everything the registry writes goes through here: whole JSON documents are replaced
atomically (a reader sees the old or the new document, never half of one), the history is
only ever appended to, and every name is checked before a path is built from it.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from collections.abc import Mapping
from numbers import Real
from pathlib import Path
from typing import Any

from harmonia.registry.errors import InvalidMetadata, InvalidName, RegistryError

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_NAME = re.compile(NAME_PATTERN)


def check_name(value: object, kind: str) -> str:
    """Return ``value`` if it is a safe model or alias name, else raise `InvalidName`.

    ``fullmatch`` rather than ``match``: with ``$``, ``match`` would accept a trailing newline.
    The pattern admits no separator, and its first character cannot be a dot, so neither
    ``..`` nor a hidden name can come through.
    """
    if not isinstance(value, str) or _NAME.fullmatch(value) is None:
        raise InvalidName(kind, value, NAME_PATTERN)
    return value


def check_version(value: object) -> int:
    """Return ``value`` if it is an int (not a bool); whether it is positive is the caller's."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"a version is a positive int, got {value!r}")
    return value


def clean_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Metrics as finite floats: a NaN or infinity would make the JSON invalid (or lie)."""
    cleaned: dict[str, float] = {}
    for name, value in metrics.items():
        if not isinstance(name, str) or not name:
            raise InvalidMetadata(f"metric names are non-empty strings, got {name!r}")
        if isinstance(value, bool) or not isinstance(value, Real):
            raise InvalidMetadata(f"metric {name!r} must be a number, got {value!r}")
        number = float(value)
        if not math.isfinite(number):
            raise InvalidMetadata(f"metric {name!r} must be finite, got {number}")
        cleaned[name] = number
    return cleaned


def clean_fingerprint(values: Any) -> list[float]:
    """A fingerprint as a list of finite floats (JSON has no tuple, NaN or infinity)."""
    try:
        numbers = [float(v) for v in values]
    except (TypeError, ValueError) as error:
        raise InvalidMetadata(f"fingerprint must be a sequence of numbers: {error}") from None
    if not all(math.isfinite(v) for v in numbers):
        raise InvalidMetadata("fingerprint values must be finite")
    return numbers


def as_json(value: Any, field: str) -> Any:
    """``value`` as it will read back from disk, or `InvalidMetadata` naming ``field``.

    Round-tripping here means the `RegisteredVersion` that ``register`` returns is exactly what a
    later ``get`` reads (tuples become lists, as they would on disk).
    """
    try:
        return json.loads(dumps(value))
    except (TypeError, ValueError) as error:
        raise InvalidMetadata(f"{field} must be JSON-serialisable: {error}") from None


def dumps(value: Any) -> str:
    """Strict JSON: ``allow_nan=False`` so that NaN never reaches a file as a bare token."""
    return json.dumps(value, allow_nan=False, sort_keys=True)


def write_json_atomic(path: Path, document: Any) -> None:
    """Replace ``path`` with ``document`` via a temporary file in the same directory.

    Same directory, so that the final ``replace`` is a rename on one file system and hence
    atomic; fsync before it, so that a crash cannot leave a renamed but empty file.
    """
    text = json.dumps(document, allow_nan=False, sort_keys=True, indent=2) + "\n"
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> Any:
    """The JSON document at ``path``; `FileNotFoundError` propagates for the caller to judge."""
    with path.open(encoding="utf-8") as file:
        return json.load(file)


def append_line(path: Path, record: Mapping[str, Any]) -> None:
    """Append one JSON object as one line, in a single write to a file opened for appending.

    Append mode never rewrites what is there, and one ``write`` of one line keeps concurrent
    appenders from interleaving inside a line.
    """
    line = dumps(dict(record)) + "\n"
    with path.open("a", encoding="utf-8") as file:
        file.write(line)
        file.flush()
        os.fsync(file.fileno())


def read_lines(path: Path) -> list[dict[str, Any]]:
    """Every complete line of a JSON-lines file (none if it does not exist).

    A last line without its newline is an append still in progress (or cut by a crash), so it
    is left out rather than failing the read.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    lines = text.split("\n")[:-1]  # what follows the last newline is incomplete
    records: list[dict[str, Any]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except ValueError as error:
            raise RegistryError(f"{path}:{number}: not a JSON line: {error}") from None
    return records
