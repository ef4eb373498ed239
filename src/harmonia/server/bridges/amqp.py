"""The server's AMQP side (RabbitMQ, or any AMQP 0-9-1 broker): the probe's calls as RPC
messages, for systems whose plumbing is already a message queue.

Requests (see `harmonia.server.bridges.messaging`, naming their ``app``) go to one durable queue,
``harmonia.requests`` unless the broker URL's ``queue`` parameter says otherwise, carrying
AMQP's own ``reply_to`` and ``correlation_id``. The bridge consumes them on its own thread,
one at a time in arrival order, answers on ``reply_to`` and acknowledges a request only once
it was handled, so a request is never lost to a crash of the server (it may then be handled
twice: delivery is at least once).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import orjson
from pydantic import ValidationError

from harmonia.sdk._amqp import broker_queue
from harmonia.server.bridges.messaging import RequestIn, answer
from harmonia.server.service import Server

logger = logging.getLogger("harmonia.server.amqp")


class AMQPBridge:
    """Consumes the request queue and answers each request on its ``reply_to`` queue."""

    def __init__(self, server: Server, url: str) -> None:
        import pika

        self.server = server
        address, self.queue = broker_queue(url)
        self.parameters = pika.URLParameters(address)
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._error: Exception | None = None
        self._thread = threading.Thread(target=self._run, name="harmonia-amqp", daemon=True)

    def start(self, timeout: float = 10.0) -> None:
        """Connect and start consuming; raises if the broker cannot be reached."""
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"the AMQP broker did not answer within {timeout} s")
        if self._error is not None:
            raise RuntimeError(f"cannot consume from the AMQP broker: {self._error}")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        import pika

        try:
            connection = pika.BlockingConnection(self.parameters)
            channel = connection.channel()
            channel.queue_declare(self.queue, durable=True)
            channel.basic_qos(prefetch_count=100)
            channel.basic_consume(self.queue, self._on_message)
        except Exception as error:  # reported by start()
            self._error = error
            self._ready.set()
            return
        self._ready.set()
        try:
            while not self._stop.is_set():
                connection.process_data_events(time_limit=0.2)
        finally:
            connection.close()

    def _on_message(self, channel: Any, method: Any, properties: Any, body: bytes) -> None:
        import pika

        try:
            request = RequestIn.model_validate_json(body)
        except ValidationError as error:
            logger.warning("dropped a malformed AMQP request: %s", error)
            channel.basic_ack(method.delivery_tag)
            return
        if request.app is None:
            reply: dict[str, Any] = {
                "id": request.id,
                "status": 422,
                "detail": [{"field": "app", "reason": "is required"}],
            }
        else:
            reply = answer(self.server, request.app, request)
        if properties.reply_to:
            channel.basic_publish(
                "",
                properties.reply_to,
                orjson.dumps(reply),
                pika.BasicProperties(
                    correlation_id=properties.correlation_id, content_type="application/json"
                ),
            )
        channel.basic_ack(method.delivery_tag)
