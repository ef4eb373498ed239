"""Preflights to Harmonica's routes from a web origin the operator has not allowed.

Harmonica's dashboard is a page of its own (``http://localhost:8000/dashboard.html``) that
calls the server from the browser: every JSON POST is preceded by a CORS preflight. The
server's CORS middleware answers those of the origins in ``HARMONIA_CORS_ORIGINS``; any
other would get a bare 405 (no allow-list) or 400, and the dashboard would show nothing
without saying why. This answers them 403 with the setting to add the origin to, and logs
it once per origin, so the operator sees why the dashboard is blocked. Allowed origins pass
through untouched.
"""

from __future__ import annotations

import json
import logging

from starlette.types import ASGIApp, Receive, Scope, Send

logger = logging.getLogger("harmonia.harmonica")
#: Harmonica's routes (``/api/<name>``), not Harmonia's own (``/api/v1/...``)
_PREFIX, _OWN = "/api/", "/api/v1/"


class HarmonicaPreflight:
    """Pure ASGI middleware; ``allowed`` are the operator's CORS origins."""

    def __init__(self, app: ASGIApp, allowed: tuple[str, ...] = ()) -> None:
        self.app = app
        self.allowed = set(allowed)
        self._told: set[str] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        origin = self._refused_origin(scope)
        if origin is None:
            await self.app(scope, receive, send)
            return
        if origin not in self._told and len(self._told) < 100:
            self._told.add(origin)
            logger.warning(
                "a page at %s called %s; add it to HARMONIA_CORS_ORIGINS to let it",
                origin,
                scope["path"],
            )
        body = json.dumps(
            {
                "error": f"origin {origin} is not allowed: add it to HARMONIA_CORS_ORIGINS "
                "(comma-separated) and restart the server"
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 403,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"vary", b"Origin"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def _refused_origin(self, scope: Scope) -> str | None:
        """The origin of a preflight to a Harmonica route that is not allowed, else None."""
        if scope["type"] != "http" or scope["method"] != "OPTIONS":
            return None
        path: str = scope["path"]
        if not path.startswith(_PREFIX) or path.startswith(_OWN):
            return None
        headers = dict(scope["headers"])
        origin = headers.get(b"origin")
        if origin is None or b"access-control-request-method" not in headers:
            return None
        text = origin.decode("latin-1")
        return None if text in self.allowed else text
