"""Trace ids: one per request, carried by every stage's samples, so the server follows the
request across a pipeline and measures its end-to-end latency and energy.

W3C Trace Context is the format services already pass between each other (the
``traceparent`` header); a stage that receives one reports its trace id, and a stage that
starts a request makes a new one and passes it on.
"""

from __future__ import annotations

import re
import secrets

_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")


def new_trace_id() -> str:
    """A fresh W3C trace id: 32 random lowercase hex digits, not all zero.

    >>> len(new_trace_id())
    32
    """
    while (trace_id := secrets.token_hex(16)) == "0" * 32:
        continue  # pragma: no cover - one chance in 2**128
    return trace_id


def trace_id_of(traceparent: str) -> str:
    """The trace id in a W3C ``traceparent`` header; a ValueError says what is wrong.

    >>> trace_id_of("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    '4bf92f3577b34da6a3ce929d0e0e4736'
    """
    found = _TRACEPARENT.fullmatch(traceparent.strip())
    if found is None:
        raise ValueError(f"not a W3C traceparent (version-traceid-parentid-flags): {traceparent!r}")
    version, trace_id, parent, _flags = found.groups()
    if version == "ff" or trace_id == "0" * 32 or parent == "0" * 16:
        raise ValueError(
            f"invalid traceparent (a reserved version or an all-zero id): {traceparent!r}"
        )
    return trace_id


def traceparent(trace_id: str) -> str:
    """A ``traceparent`` header that passes ``trace_id`` to the next stage (a new span id,
    sampled).

    >>> traceparent("4bf92f3577b34da6a3ce929d0e0e4736")[:35]
    '00-4bf92f3577b34da6a3ce929d0e0e4736'
    """
    return f"00-{trace_id}-{secrets.token_hex(8)}-01"
