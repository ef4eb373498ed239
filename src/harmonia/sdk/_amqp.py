"""`AMQPTransport`: the wire contract as RPC through an AMQP 0-9-1 broker (RabbitMQ).

Each call publishes a request to the server's request queue with ``reply_to`` (this
transport's own exclusive queue) and a ``correlation_id``, then waits for the reply — so
`Probe` gets the same answers, actions and retry decisions as over HTTP (see
`harmonia.server.bridges.amqp`). pika is imported when the transport is built
(``pip install harmonia[amqp]``); its connection is not thread-safe, so calls take turns.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from harmonia.sdk._envelope import BrokerTransport, reply_body, request_payload
from harmonia.sdk._transport import TransportError

DEFAULT_QUEUE = "harmonia.requests"


def broker_queue(url: str) -> tuple[str, str]:
    """Split ``amqp://...?queue=name`` into the URL pika reads and the request queue's name.

    >>> broker_queue("amqp://guest:guest@127.0.0.1:5672/%2F?queue=site-a&heartbeat=30")
    ('amqp://guest:guest@127.0.0.1:5672/%2F?heartbeat=30', 'site-a')
    >>> broker_queue("amqp://127.0.0.1")[1]
    'harmonia.requests'
    """
    parts = urlsplit(url)
    if parts.scheme not in ("amqp", "amqps") or not parts.hostname:
        raise ValueError(f"an AMQP broker URL looks like amqp://user:pass@host:5672/, not {url!r}")
    query = parse_qsl(parts.query)
    queue = next((v for k, v in query if k == "queue"), DEFAULT_QUEUE)
    rest = urlencode([(k, v) for k, v in query if k != "queue"])
    return urlunsplit(parts._replace(query=rest)), queue


class AMQPTransport(BrokerTransport):
    """Sends telemetry, action results and version descriptions through an AMQP broker.

    ``broker`` is ``amqp://user:password@host:5672/vhost``, optionally with
    ``?queue=name`` (the server bridge's request queue, ``harmonia.requests`` by default).
    A reply that does not come within ``timeout`` seconds is a retryable error.
    """

    def __init__(self, broker: str, token: str, *, timeout: float = 5.0) -> None:
        import pika

        address, self.queue = broker_queue(broker)
        self.timeout = timeout
        self._token = token
        self._ids = itertools.count(1)
        self._replies: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        try:
            self._connection = pika.BlockingConnection(pika.URLParameters(address))
            self._channel = self._connection.channel()
            declared = self._channel.queue_declare("", exclusive=True, auto_delete=True)
        except pika.exceptions.AMQPError as error:
            raise TransportError(True, f"cannot reach the broker: {error!r}") from error
        self.reply_to: str = declared.method.queue
        self._channel.basic_consume(self.reply_to, self._on_reply, auto_ack=True)

    def close(self) -> None:
        with self._lock:
            if self._connection.is_open:
                self._connection.close()

    def _on_reply(self, channel: Any, method: Any, properties: Any, body: bytes) -> None:
        import orjson

        with contextlib.suppress(orjson.JSONDecodeError):
            self._replies[properties.correlation_id] = orjson.loads(body)

    def _call(self, app: str, call: str, body: dict[str, Any], **extra: Any) -> Any:
        import pika

        request_id = str(next(self._ids))
        payload = request_payload(request_id, self._token, call, body, app=app, **extra)
        where = f"{call} for {app} on {self.queue}"
        with self._lock:
            try:
                self._channel.basic_publish(
                    "",
                    self.queue,
                    payload,
                    pika.BasicProperties(
                        reply_to=self.reply_to,
                        correlation_id=request_id,
                        content_type="application/json",
                        delivery_mode=2,  # persistent: survives a broker restart
                    ),
                )
                deadline = time.monotonic() + self.timeout
                while request_id not in self._replies:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise TransportError(True, f"{where}: no reply in {self.timeout} s")
                    self._connection.process_data_events(time_limit=min(left, 0.05))
            except pika.exceptions.AMQPError as error:
                raise TransportError(True, f"{where}: {error!r}") from error
            reply = self._replies.pop(request_id)
        return reply_body(reply, where)
