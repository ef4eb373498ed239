"""A small HTTP/1.1 client for pushing actions to effectors: POST only, one kept-alive
connection per origin, h11 for the protocol.

Why not httpx: its async stack costs about a millisecond of CPU per request, and a push
runs on the server's event loop, beside ingestion, on the path whose latency users wait
on. h11 (httpx's own parser) does the HTTP; this module only moves bytes.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from urllib.parse import urlsplit

import h11

from harmonia.server.targets import resolve_allowed

#: the most of an effector's reply that is read (its status is what matters)
MAX_REPLY_BYTES = 1024 * 1024
Origin = tuple[str, str, int]
Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter, h11.Connection]


class EffectorUnreachable(Exception):
    """No answer from the effector: refused, reset, closed early or timed out."""


class EffectorClient:
    """POSTs bodies to effector URLs; one instance per sender (it is not shared by tasks).

    Each new connection goes to an address checked when it is made (`resolve_allowed`):
    `harmonia.server.targets.TargetRefused` is raised for one the server must not call.
    """

    def __init__(self, timeout: float = 2.0, *, allow_link_local: bool = False) -> None:
        self.timeout = timeout
        self.allow_link_local = allow_link_local
        self._connections: dict[
            Origin, tuple[asyncio.StreamReader, asyncio.StreamWriter, h11.Connection]
        ] = {}

    async def post(self, url: str, body: bytes) -> tuple[int, bytes]:
        """The effector's status and body; `EffectorUnreachable` when there is none."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise EffectorUnreachable(f"not an http(s) URL: {url!r}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        origin = (parts.scheme, parts.hostname, port)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        for attempt in range(2):
            reused = origin in self._connections
            try:
                return await asyncio.wait_for(self._exchange(origin, target, body), self.timeout)
            except TimeoutError:
                self._drop(origin)
                raise EffectorUnreachable(f"no answer within {self.timeout} s") from None
            except (OSError, h11.ProtocolError, ConnectionError) as error:
                self._drop(origin)
                if reused and attempt == 0:
                    continue  # the effector closed an idle kept-alive connection: reconnect
                raise EffectorUnreachable(f"{error.__class__.__name__}: {error}") from error
        raise AssertionError("unreachable")

    async def close(self) -> None:
        for origin in list(self._connections):
            self._drop(origin)

    async def _exchange(self, origin: Origin, target: str, body: bytes) -> tuple[int, bytes]:
        reader, writer, protocol = await self._connection(origin)
        scheme, host, port = origin
        default = 443 if scheme == "https" else 80
        headers = [
            ("Host", host if port == default else f"{host}:{port}"),
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
        ]
        data = protocol.send(h11.Request(method="POST", target=target, headers=headers))
        data = (data or b"") + (protocol.send(h11.Data(data=body)) or b"")
        data += protocol.send(h11.EndOfMessage()) or b""
        writer.write(data)
        await writer.drain()
        status, chunks, size = 0, [], 0
        while True:
            event = protocol.next_event()
            if event is h11.NEED_DATA:
                protocol.receive_data(await reader.read(65536))  # b"" means closed
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
                size += len(event.data)
                if size > MAX_REPLY_BYTES:
                    raise ConnectionError(f"the reply is over {MAX_REPLY_BYTES} bytes")
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionError("the effector closed the connection before answering")
        if protocol.our_state is h11.DONE and protocol.their_state is h11.DONE:
            protocol.start_next_cycle()  # keep the connection for the next push
        else:
            self._drop(origin)
        return status, b"".join(chunks)

    async def _connection(self, origin: Origin) -> Connection:
        known = self._connections.get(origin)
        if known is not None:
            return known
        scheme, host, port = origin
        context = ssl.create_default_context() if scheme == "https" else None
        address = await resolve_allowed(host, port, allow_link_local=self.allow_link_local)
        reader, writer = await asyncio.open_connection(
            address, port, ssl=context, server_hostname=host if context else None
        )
        sock = writer.get_extra_info("socket")
        if sock is not None:  # headers and body go out in one write, but replies are small
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        made = (reader, writer, h11.Connection(h11.CLIENT))
        self._connections[origin] = made
        return made

    def _drop(self, origin: Origin) -> None:
        known = self._connections.pop(origin, None)
        if known is not None:
            known[1].close()
