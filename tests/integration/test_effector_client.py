"""The push client against real HTTP servers on loopback: kept-alive connections, servers
that close after each answer, chunked answers, silence and refusal."""

from __future__ import annotations

import asyncio
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from harmonia.server.effector_client import EffectorClient, EffectorUnreachable


def serve(version: str, chunked: bool = False) -> tuple[ThreadingHTTPServer, list[int]]:
    """An effector answering ``{"status": "applied"}``; records each request's client port."""
    ports: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = version

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            ports.append(self.client_address[1])
            body = b'{"status": "applied"}'
            self.send_response(200)
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
            else:
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, ports


async def post_three(url: str) -> list[tuple[int, bytes]]:
    client = EffectorClient(timeout=2.0)
    try:
        return [await client.post(url, b'{"id": %d}' % i) for i in range(3)]
    finally:
        await client.close()


@pytest.mark.parametrize(
    ("version", "chunked"), [("HTTP/1.1", False), ("HTTP/1.1", True), ("HTTP/1.0", False)]
)
def test_answers_are_read_and_connections_kept_where_the_effector_allows(
    version: str, chunked: bool
) -> None:
    server, ports = serve(version, chunked)
    try:
        url = f"http://127.0.0.1:{server.server_port}/tactic?app=traffic"
        replies = asyncio.run(post_three(url))
    finally:
        server.shutdown()
    assert replies == [(200, b'{"status": "applied"}')] * 3
    connections = len(set(ports))
    assert connections == (1 if version == "HTTP/1.1" else 3)


def test_a_refused_connection_and_a_silent_effector_are_unreachable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(EffectorUnreachable, match="ConnectionRefused"):
        asyncio.run(EffectorClient(timeout=1.0).post(f"http://127.0.0.1:{port}/", b"{}"))
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()  # accepts, never answers
    try:
        with pytest.raises(EffectorUnreachable, match=r"no answer within 0\.3 s"):
            asyncio.run(
                EffectorClient(timeout=0.3).post(
                    f"http://127.0.0.1:{silent.getsockname()[1]}/", b"{}"
                )
            )
    finally:
        silent.close()
    with pytest.raises(EffectorUnreachable, match="not an http"):
        asyncio.run(EffectorClient().post("ftp://example.org/x", b"{}"))
