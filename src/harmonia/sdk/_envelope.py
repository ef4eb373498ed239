"""What the broker transports (MQTT, AMQP) share: the request envelope they publish and how a
reply becomes a body or a `TransportError` — the same decision `HTTPTransport` makes from a
status code (see `harmonia.server.bridges.messaging` for the server's side)."""

from __future__ import annotations

from typing import Any, Self

from harmonia.sdk._http import RETRYABLE_CLIENT_ERRORS, post_batch
from harmonia.sdk._messages import ActionMessage, actions_from_reply
from harmonia.sdk._transport import TransportError


class BrokerTransport:
    """The `Transport` calls as requests through a broker; a subclass says how one request
    travels and its reply comes back (`_call`) and how the connection closes."""

    #: whether batches go as columns (`harmonia.sdk._wire.to_columns`), as over HTTP; a
    #: server that refuses them gets rows from then on
    columns: bool = True

    def send(
        self,
        app: str,
        instance: str,
        samples: list[dict[str, Any]],
        *,
        idempotency_key: str | None = None,
    ) -> list[ActionMessage]:
        # The key travels in the envelope, beside the token, as HTTP carries it in a header.
        extra = {} if idempotency_key is None else {"idempotency_key": idempotency_key}
        reply = post_batch(
            self,
            lambda body: self._call(app, "telemetry", body, **extra),
            instance,
            samples,
            type(self).__name__,
        )
        return actions_from_reply(reply)

    def report(self, app: str, action_id: int, status: str, reason: str) -> None:
        self._call(app, "result", {"status": status, "reason": reason}, action_id=action_id)

    def describe_version(
        self, app: str, model: str, version: int, description: dict[str, Any]
    ) -> None:
        self._call(app, "version", description, model=model, version=version)

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _call(self, app: str, call: str, body: dict[str, Any], **extra: Any) -> Any:
        """Send one request and wait for its reply: the reply's body or a TransportError."""
        raise NotImplementedError


def request_payload(request_id: int | str, token: str, call: str, body: Any, **extra: Any) -> bytes:
    """The JSON of one request; an unencodable body is a non-retryable `TransportError`.

    >>> request_payload(7, "t", "telemetry", {"samples": []}, idempotency_key="k1")
    b'{"id":7,"token":"t","call":"telemetry","body":{"samples":[]},"idempotency_key":"k1"}'
    """
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
