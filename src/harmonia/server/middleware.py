"""ASGI middleware of the server, pure (Starlette's ``BaseHTTPMiddleware`` would cost about
a millisecond per request)."""

import re

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from harmonia.server.errors import TooLarge


class BodyLimit:
    """Refuse a body over its limit with 413: at once when its declared length is over, and,
    for a body streamed without one (chunked), as soon as the bytes received pass it (pure
    ASGI: Starlette's ``BaseHTTPMiddleware`` would cost about a millisecond per request).

    Telemetry batches may be ``limit`` bytes; every other body ``document_limit``: FastAPI
    parses a typed route's JSON body on the event loop, before checking any token. Uploads of
    models and datasets (paths matching ``uploads``) may be ``upload_limit`` bytes: they are
    streamed to the artifact store, which refuses an artifact over its own limit.
    """

    def __init__(
        self,
        app: ASGIApp,
        limit: int,
        document_limit: int,
        *,
        uploads: str = "",
        upload_limit: int = 0,
    ) -> None:
        self.app = app
        self.limit = limit
        self.document_limit = document_limit
        self.uploads = re.compile(uploads) if uploads else None
        self.upload_limit = upload_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        limit = self.limit if path.endswith("/telemetry") else self.document_limit
        if self.uploads is not None and self.uploads.match(path):
            limit = self.upload_limit
        for key, value in scope["headers"]:
            if key == b"content-length" and value.isdigit() and int(value) > limit:
                await _refuse(limit, scope, receive, send)
                return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise TooLarge(f"request body over {limit} bytes")
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except TooLarge:
            if started:
                raise
            await _refuse(limit, scope, receive, send)


async def _refuse(limit: int, scope: Scope, receive: Receive, send: Send) -> None:
    reply = JSONResponse(
        {"detail": f"request body over {limit} bytes"},
        status_code=413,
        headers={"Connection": "close"},  # the client may still be sending: it ends here
    )
    await reply(scope, receive, send)
