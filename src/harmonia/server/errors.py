"""The server's domain errors, and the one place they become HTTP statuses.

The service layer (`harmonia.server.service.Server`) and the routes raise these; the HTTP
exception handlers (`harmonia.server.app`) and the broker bridges turn them into a status
and a JSON ``detail`` through `status_of`, so a probe gets the same answer whatever carried
its request.
"""

from __future__ import annotations

from typing import Any

from harmonia.bounded import DocumentTooComplex
from harmonia.core.errors import HarmoniaError, PolicyError
from harmonia.registry.errors import ArtifactNotFound, ArtifactTooLarge, ChecksumMismatch
from harmonia.store import Conflict, NotFound


class Unauthorized(HarmoniaError):
    """No credentials where some are needed."""


class Forbidden(HarmoniaError):
    """Credentials that do not allow this."""


class Invalid(HarmoniaError):
    """A request that names something wrong: ``issues`` lists ``{field, reason}``."""

    def __init__(self, issues: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(f"{i['field']}: {i['reason']}" for i in issues))
        self.issues = issues


class TooLarge(HarmoniaError):
    """A body over its size limit."""


class Unavailable(HarmoniaError):
    """Something the request needs is down (the database); retry later."""


class Internal(HarmoniaError):
    """A fault of the server, not of the request; the message says what is wrong."""


_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (Unauthorized, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (Conflict, 409),
    (TooLarge, 413),
    (Invalid, 422),
    (PolicyError, 422),
    (DocumentTooComplex, 413),
    (ArtifactTooLarge, 413),
    # the server's own bytes, missing or damaged where they are kept: not the request's fault
    (ArtifactNotFound, 500),
    (ChecksumMismatch, 500),
    (Unavailable, 503),
    (Internal, 500),
)

DOMAIN_ERRORS = tuple(kind for kind, _ in _STATUS)


def status_of(error: Exception) -> tuple[int, Any]:
    """The HTTP status and JSON ``detail`` for a domain error (500 for anything else)."""
    for kind, status in _STATUS:
        if isinstance(error, kind):
            return status, _detail(error)
    return 500, "internal error"


def _detail(error: Exception) -> Any:
    if isinstance(error, Invalid):
        return error.issues
    if isinstance(error, PolicyError):
        return [{"field": i.path, "reason": i.reason} for i in error.issues]
    return str(error)
