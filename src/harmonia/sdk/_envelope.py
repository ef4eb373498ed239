"""What the broker transports (MQTT, AMQP) share: the request envelope they publish and how a
reply becomes a body or a `TransportError` — the same decision `HTTPTransport` makes from a
status code (see `harmonia.server.messaging` for the server's side)."""

from __future__ import annotations

from typing import Any

from harmonia.sdk._http import RETRYABLE_CLIENT_ERRORS
from harmonia.sdk._transport import TransportError


def request_payload(request_id: int | str, token: str, call: str, body: Any, **extra: Any) -> bytes:
    """The JSON of one request; an unencodable body is a non-retryable `TransportError`."""
    import orjson

    try:
        return orjson.dumps({"id": request_id, "token": token, "call": call, "body": body, **extra})
    except TypeError as error:
        raise TransportError(False, f"cannot encode the request: {error}") from error


def reply_body(reply: dict[str, Any], where: str) -> Any:
    """The body of a 2xx reply; otherwise a `TransportError`, retryable for 5xx, 408, 429.

    >>> reply_body({"id": 1, "status": 200, "body": {"accepted": 2}}, "telemetry")
    {'accepted': 2}
    >>> reply_body({"id": 1, "status": 403, "detail": "no"}, "telemetry")
    Traceback (most recent call last):
    ...
    harmonia.sdk._transport.TransportError: telemetry: 403: no
    """
    import orjson

    status = int(reply.get("status", 500))
    if 200 <= status < 300:
        return reply.get("body")
    detail = reply.get("detail")
    text = detail if isinstance(detail, str) else orjson.dumps(detail).decode()
    retryable = status >= 500 or status in RETRYABLE_CLIENT_ERRORS
    raise TransportError(retryable, f"{where}: {status}: {text}", status=status)
