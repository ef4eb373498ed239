"""`HTTPTransport`: the wire contract over HTTP, with one persistent connection pool.

httpx and orjson are imported when the transport is built, not when ``harmonia.sdk`` is
imported: a managed system that runs the server in-process (`InMemoryTransport`) should not
need either installed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

from harmonia.sdk._messages import ActionMessage, actions_from_reply
from harmonia.sdk._transport import TransportError
from harmonia.sdk._wire import to_columns

if TYPE_CHECKING:
    import httpx

logger = logging.getLogger("harmonia.sdk")

RETRYABLE_CLIENT_ERRORS = frozenset({408, 429})
"""4xx statuses that mean "not now" rather than "never" (timeout, rate limit): retried."""

IDEMPOTENCY_HEADER = "Idempotency-Key"
"""The header naming a telemetry batch, the same on each retry, so the server stores it once."""


class HTTPTransport:
    """Posts telemetry batches and action results to a Harmonia server.

    ``server`` is the base URL (``http://host:port``); ``token`` goes into an
    ``Authorization: Bearer`` header, a batch's idempotency key into ``Idempotency-Key``.
    Pass ``client`` to reuse an ``httpx.Client`` (its lifetime stays yours); otherwise the
    transport owns one and `close` closes it.
    A 2xx reply is accepted, a 4xx rejects (`TransportError` with ``retryable=False`` and the
    server's ``detail``), except 408/429; 5xx and network errors are retryable.
    """

    def __init__(
        self,
        server: str,
        token: str,
        *,
        timeout: float = 5.0,
        client: httpx.Client | None = None,
        columns: bool = True,
    ) -> None:
        import httpx

        self.server = server.rstrip("/")
        self.timeout = timeout
        #: whether batches go as columns (see `to_columns`); a server that refuses them
        #: (older than the form) turns this off and gets rows
        self.columns = columns
        self._headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self._owns_client = client is None
        self._client = client if client is not None else httpx.Client(timeout=timeout)

    def send(
        self,
        app: str,
        instance: str,
        samples: list[dict[str, Any]],
        *,
        idempotency_key: str | None = None,
    ) -> list[ActionMessage]:
        url = f"{self.server}/api/v1/apps/{quote(app, safe='')}/telemetry"
        headers = {IDEMPOTENCY_HEADER: idempotency_key} if idempotency_key is not None else None
        reply = post_batch(
            self,
            lambda body: self._request("POST", url, body, headers),
            instance,
            samples,
            self.server,
        )
        return actions_from_reply(reply)

    def report(self, app: str, action_id: int, status: str, reason: str) -> None:
        url = f"{self.server}/api/v1/apps/{quote(app, safe='')}/actions/{action_id}/result"
        self._request("POST", url, {"status": status, "reason": reason})

    def describe_version(
        self, app: str, model: str, version: int, description: dict[str, Any]
    ) -> None:
        url = (
            f"{self.server}/api/v1/apps/{quote(app, safe='')}/models/"
            f"{quote(model, safe='')}/versions/{int(version)}"
        )
        self._request("PUT", url, description)

    def close(self) -> None:
        """Close the connection pool, if this transport created it."""
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> HTTPTransport:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _request(
        self,
        method: str,
        url: str,
        payload: dict[str, Any],
        headers: dict[str, str] | None = None,
    ) -> Any:
        """Send ``payload`` as JSON, with ``headers`` beside the usual ones; the decoded reply
        body, or a `TransportError`."""
        import httpx
        import orjson

        try:
            body = orjson.dumps(payload)
        except TypeError as error:  # orjson.JSONEncodeError: the data, not the network
            raise TransportError(False, f"cannot encode the request body: {error}") from error
        try:
            response = self._client.request(
                method,
                url,
                content=body,
                headers=self._headers if headers is None else {**self._headers, **headers},
                timeout=self.timeout,
            )
        except httpx.HTTPError as error:
            raise TransportError(True, f"{method} {url}: {error!r}") from error
        code = response.status_code
        if 200 <= code < 300:
            return _decode(response.content, url)
        message = f"{method} {url}: HTTP {code}: {_detail(response)}"
        if code >= 500 or code in RETRYABLE_CLIENT_ERRORS:
            raise TransportError(True, message, status=code)
        raise TransportError(False, message, status=code)


class Columnar(Protocol):
    """A transport that sends batches as columns until a server refuses them."""

    columns: bool


def post_batch(
    sender: Columnar,
    post: Callable[[dict[str, Any]], Any],
    instance: str,
    samples: list[dict[str, Any]],
    where: str,
) -> Any:
    """Post one telemetry batch: as columns (`to_columns`) while ``sender.columns``, else as
    rows. A server older than the columnar form refuses it whole, so its idempotency key is
    still free: the batch goes again as rows, and so do the later ones."""
    if sender.columns:
        try:
            return post({"instance": instance, "columns": to_columns(samples)})
        except TransportError as error:
            if not _columns_refused(error):
                raise
            logger.info("%s takes no columnar batches; sending rows", where)
            sender.columns = False
    return post({"instance": instance, "samples": samples})


def _columns_refused(error: TransportError) -> bool:
    """Whether a server refused a columnar batch for its form: one older than it, whose
    schema knows only ``samples`` (its 422 names ``columns`` as an extra input)."""
    return error.status == 422 and '"field":"columns","reason":"Extra inputs' in error.message


def _decode(content: bytes, url: str) -> Any:
    """The JSON body of an accepted reply; ``None`` (no actions) if it is not JSON."""
    import orjson

    if not content:
        return None
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        logger.warning("POST %s: the reply is not JSON; treating it as accepted", url)
        return None


def _detail(response: httpx.Response) -> str:
    """The server's ``detail`` of an error reply, or the start of its text."""
    import orjson

    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return response.text[:500] or response.reason_phrase
    if isinstance(body, dict) and "detail" in body:
        detail = body["detail"]
        return detail if isinstance(detail, str) else orjson.dumps(detail).decode()
    return response.text[:500]
