"""Push delivery to an effector URL: applied, refused, and an effector that is down."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from test_server_api import ADMIN, POLICY, auth, samples

from harmonia.server.app import create_app
from harmonia.store import Store, sqlite_url


class Effector:
    """A real HTTP effector on loopback that records what it receives."""

    def __init__(self, answer: dict[str, Any] | None, status: int = 200) -> None:
        self.received: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                outer.received.append(json.loads(self.rfile.read(length)))
                body = json.dumps(answer or {}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/tactic"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/tactic"  # nothing listens there any more


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    store = Store(sqlite_url(tmp_path))
    with TestClient(create_app(store, ADMIN)) as test_client:
        yield test_client
    store.close()


def _violate(client: TestClient, effector_url: str) -> list[dict[str, Any]]:
    reply = client.post(
        "/api/v1/apps",
        json={
            "name": "traffic",
            "owner": "t",
            "models": ["linear", "svm", "lstm"],
            "effector_url": effector_url,
        },
        headers=auth(ADMIN),
    )
    token = reply.json()["token"]
    client.put("/api/v1/apps/traffic/policy", content=POLICY, headers=auth(token))
    for start, r2 in ((0, 0.95), (50, 0.3)):
        body = {"samples": samples("lstm", 50, r2, start=start)}
        answer = client.post("/api/v1/apps/traffic/telemetry", json=body, headers=auth(token))
        assert answer.json()["actions"] == []  # pushed, never pulled
    client.app.state.server.pusher.join()
    return client.get("/api/v1/apps/traffic/actions").json()


def test_pushed_action_applied_by_the_effector(client: TestClient) -> None:
    effector = Effector({"status": "applied", "reason": "now serving linear"})
    try:
        [action] = _violate(client, effector.url)
    finally:
        effector.close()
    assert action["status"] == "applied" and action["detail"] == "now serving linear"
    assert action["delivered_at"] is not None
    [received] = effector.received
    assert received["kind"] == "switch_model" and received["id"] == action["id"]


def test_effector_that_refuses(client: TestClient) -> None:
    effector = Effector({"detail": "no"}, status=400)
    try:
        [action] = _violate(client, effector.url)
    finally:
        effector.close()
    assert action["status"] == "failed" and "refused" in action["detail"]


def test_effector_that_is_down_fails_the_action_and_the_loop_goes_on(client: TestClient) -> None:
    [action] = _violate(client, _dead_url())
    assert action["status"] == "failed"
    assert "unreachable" in action["detail"] and "after 5 attempts" in action["detail"]
    token_reply = client.get("/api/v1/apps/traffic/windows")
    assert len(token_reply.json()) == 2  # the loop kept deciding
