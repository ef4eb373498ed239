"""The store's errors, apart so that the server maps them to HTTP replies without reaching
into any one resource's module."""

from __future__ import annotations

from harmonia.core.errors import HarmoniaError


class StoreError(HarmoniaError):
    """A request the store cannot satisfy; the message says why."""


class NotFound(StoreError, LookupError):
    pass


class Conflict(StoreError):
    pass
