"""`HTTPTransport` against a real HTTP server on 127.0.0.1, speaking the wire contract."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from harmonia.sdk import ActionMessage, Effector, HTTPTransport, Probe, ProbeStats, TransportError
from harmonia.sdk._wire import to_columns
from support import free_port


def samples_in(body: dict[str, Any]) -> list[dict[str, Any]]:
    """A telemetry body's samples as rows, whichever form it came in."""
    if "samples" in body:
        return list(body["samples"])
    columns = body["columns"]
    rows = zip(*columns.values(), strict=True)
    return [dict(zip(columns, values, strict=True)) for values in rows]


TOKEN = "s3cret"


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    raw: bytes | None = None
    delay: float = 0.0


class QuietServer(ThreadingHTTPServer):
    """Does not print the broken pipe of a client that timed out before the reply."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


class RecordingServer:
    """A threaded HTTP server that records every POST and answers from a script.

    ``replies`` is consumed one per request (then the default reply is used): telemetry gets
    ``{"accepted": n, "actions": []}``, action results an empty 200.
    """

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.replies: list[Reply] = []
        self.lock = threading.Lock()
        handler = self._handler_class()
        self.httpd = QuietServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"null")
                with server.lock:
                    server.requests.append(Request(self.path, dict(self.headers), body))
                    reply = server.replies.pop(0) if server.replies else None
                if reply is None:
                    count = len(samples_in(body)) if self.path.endswith("/telemetry") else 0
                    reply = Reply(body={"accepted": count, "actions": []})
                time.sleep(reply.delay)
                data = reply.raw if reply.raw is not None else json.dumps(reply.body).encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def telemetry(self) -> list[Request]:
        return [r for r in self.requests if r.path.endswith("/telemetry")]


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    server = RecordingServer()
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


@pytest.fixture
def transport(server: RecordingServer) -> Iterator[HTTPTransport]:
    with HTTPTransport(server.url + "/", TOKEN, timeout=5.0) as transport:
        yield transport


SAMPLE = {
    "service": "default",
    "model": "svm",
    "model_version": 2,
    "ts": 1700000000.5,
    "latency_ms": 3.25,
    "energy_j": 0.01,
    "energy_source": "estimate",
    "prediction": 41.0,
    "target": None,
    "drift_value": 0.5,
    "metrics": {"confidence": 0.9},
}

ACTION = {
    "id": 12,
    "kind": "switch_model",
    "model": "lstm",
    "version": 3,
    "reason": "r2 0.61 < 0.8",
    "trigger": "r2<0.8",
    "values": {"r2": 0.61},
}


def test_send_posts_the_batch_with_the_token(
    server: RecordingServer, transport: HTTPTransport
) -> None:
    server.replies = [Reply(body={"accepted": 2, "actions": [ACTION]})]
    actions = transport.send("traffic", "edge-1", [SAMPLE, SAMPLE])
    (request,) = server.requests
    assert request.path == "/api/v1/apps/traffic/telemetry"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Content-Type"] == "application/json"
    # sent as columns (the server's quick form), the same samples
    assert request.body == {"instance": "edge-1", "columns": to_columns([SAMPLE, SAMPLE])}
    assert samples_in(request.body) == [SAMPLE, SAMPLE]
    assert actions == [
        ActionMessage(12, "switch_model", "lstm", 3, "r2 0.61 < 0.8", "r2<0.8", {"r2": 0.61})
    ]


def test_a_batch_is_named_by_its_idempotency_key(
    server: RecordingServer, transport: HTTPTransport
) -> None:
    transport.send("traffic", "edge-1", [SAMPLE], idempotency_key="9f2c.batch:7_a-1")
    transport.send("traffic", "edge-1", [SAMPLE])
    transport.report("traffic", 12, "applied", "")
    keyed, unkeyed, report = (r.headers for r in server.requests)
    assert keyed["Idempotency-Key"] == "9f2c.batch:7_a-1"
    assert keyed["Authorization"] == f"Bearer {TOKEN}"  # beside, not instead of, the others
    assert "Idempotency-Key" not in unkeyed and "Idempotency-Key" not in report


def test_report_posts_the_result(server: RecordingServer, transport: HTTPTransport) -> None:
    transport.report("traffic", 12, "failed", "no handler for switch_model")
    (request,) = server.requests
    assert request.path == "/api/v1/apps/traffic/actions/12/result"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.body == {"status": "failed", "reason": "no handler for switch_model"}


def test_app_names_are_quoted_into_the_path(
    server: RecordingServer, transport: HTTPTransport
) -> None:
    transport.send("my app/1", "default", [SAMPLE])
    assert server.requests[0].path == "/api/v1/apps/my%20app%2F1/telemetry"


def test_a_non_json_success_reply_means_no_actions(
    server: RecordingServer, transport: HTTPTransport
) -> None:
    server.replies = [Reply(raw=b"OK"), Reply(raw=b"")]
    assert transport.send("traffic", "default", [SAMPLE]) == []
    assert transport.send("traffic", "default", [SAMPLE]) == []


@pytest.mark.parametrize(
    ("status", "detail", "shown"),
    [
        (400, "sample 0: ts must be a finite number", "sample 0: ts must be a finite number"),
        (401, "bad token", "bad token"),
        (404, "unknown app 'traffic'", "unknown app 'traffic'"),
        (422, [{"loc": ["samples", 0], "msg": "bad"}], '"msg":"bad"'),
    ],
)
def test_a_4xx_is_not_retryable_and_carries_the_detail(
    server: RecordingServer, transport: HTTPTransport, status: int, detail: Any, shown: str
) -> None:
    server.replies = [Reply(status, {"detail": detail})]
    with pytest.raises(TransportError) as caught:
        transport.send("traffic", "default", [SAMPLE])
    assert caught.value.retryable is False
    assert caught.value.status == status
    assert shown in caught.value.message and f"HTTP {status}" in caught.value.message


def test_a_4xx_on_report_is_not_retryable(
    server: RecordingServer, transport: HTTPTransport
) -> None:
    server.replies = [Reply(409, {"detail": "action 12 already has a result"})]
    with pytest.raises(TransportError) as caught:
        transport.report("traffic", 12, "applied", "")
    assert not caught.value.retryable and "already has a result" in caught.value.message


@pytest.mark.parametrize("status", [500, 502, 503, 429, 408])
def test_5xx_and_throttling_are_retryable(
    server: RecordingServer, transport: HTTPTransport, status: int
) -> None:
    server.replies = [Reply(status, raw=b"<html>unavailable</html>")]
    with pytest.raises(TransportError) as caught:
        transport.send("traffic", "default", [SAMPLE])
    assert caught.value.retryable is True and caught.value.status == status
    assert "unavailable" in caught.value.message


def test_connection_refused_is_retryable() -> None:
    with HTTPTransport(f"http://127.0.0.1:{free_port()}", TOKEN) as transport:
        with pytest.raises(TransportError) as caught:
            transport.send("traffic", "default", [SAMPLE])
        assert caught.value.retryable is True and caught.value.status is None
        with pytest.raises(TransportError) as caught:
            transport.report("traffic", 1, "applied", "")
        assert caught.value.retryable is True


def test_a_timeout_is_retryable(server: RecordingServer) -> None:
    server.replies = [Reply(body={"accepted": 1, "actions": []}, delay=1.0)]
    with (
        HTTPTransport(server.url, TOKEN, timeout=0.1) as transport,
        pytest.raises(TransportError) as caught,
    ):
        transport.send("traffic", "default", [SAMPLE])
    assert caught.value.retryable is True


def test_a_borrowed_client_is_used_and_left_open(server: RecordingServer) -> None:
    with httpx.Client() as client:
        transport = HTTPTransport(server.url, TOKEN, client=client)
        transport.send("traffic", "default", [SAMPLE])
        transport.close()
        assert not client.is_closed
        assert server.requests[0].headers["Authorization"] == f"Bearer {TOKEN}"


def test_a_probe_over_http_end_to_end(server: RecordingServer, transport: HTTPTransport) -> None:
    server.replies = [
        Reply(503, {"detail": "store busy"}),
        Reply(body={"accepted": 3, "actions": [ACTION, {**ACTION, "id": 13, "kind": "retrain"}]}),
        Reply(body=None),  # result of action 12
        Reply(body=None),  # result of action 13
        Reply(400, {"detail": "unknown model 'svm2'"}),
    ]
    effector = Effector()
    effector.on("switch_model", lambda action: f"now {action.model}")
    with Probe(
        "traffic",
        transport,
        instance="edge-1",
        effector=effector,
        flush_interval=60.0,
        backoff=0.001,
    ) as probe:
        for i in range(3):
            with probe.measure("svm", version=2) as m:
                m.prediction = float(i)
        assert probe.flush(timeout=10.0)
        probe.record("svm2")
    telemetry = server.telemetry()
    assert len(telemetry) == 3  # 503, retried batch, rejected batch
    assert telemetry[0].body == telemetry[1].body
    keys = [r.headers["Idempotency-Key"] for r in telemetry]
    assert keys[0] == keys[1] != keys[2]  # a retry is the same batch, the next one is not
    assert [s["prediction"] for s in samples_in(telemetry[1].body)] == [0.0, 1.0, 2.0]
    assert telemetry[1].body["instance"] == "edge-1"
    results = {r.path: r.body for r in server.requests if r.path.endswith("/result")}
    assert results == {
        "/api/v1/apps/traffic/actions/12/result": {"status": "applied", "reason": "now lstm"},
        "/api/v1/apps/traffic/actions/13/result": {
            "status": "failed",
            "reason": "no handler for retrain",
        },
    }
    assert probe.stats.snapshot() == ProbeStats(
        sent=3, rejected=1, batches=1, actions_applied=1, actions_failed=1
    )
