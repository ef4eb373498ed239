"""`MQTTTransport`: the wire contract through an MQTT broker, for systems that speak MQTT.

Each call is a request published at QoS 1 to ``<prefix>/<app>/requests`` and answered by the
server's bridge on this transport's own reply topic (see `harmonia.server.mqtt`); the call
waits for its reply, so `Probe` gets the same answers, actions and retry decisions as over
HTTP. paho-mqtt is imported when the transport is built (``pip install harmonia[mqtt]``).
"""

from __future__ import annotations

import itertools
import secrets
import threading
from typing import Any
from urllib.parse import urlsplit

from harmonia.sdk._http import RETRYABLE_CLIENT_ERRORS
from harmonia.sdk._messages import ActionMessage, actions_from_reply
from harmonia.sdk._transport import TransportError


class MQTTTransport:
    """Sends telemetry, action results and version descriptions through an MQTT broker.

    ``broker`` is ``mqtt://host:port`` or ``mqtt://host:port/prefix`` (the topic prefix the
    server's bridge listens under, ``harmonia`` by default); ``token`` is the application's
    token (or the admin's). A reply that does not come within ``timeout`` seconds is a
    retryable error, as a network error is over HTTP.
    """

    def __init__(
        self,
        broker: str,
        token: str,
        *,
        timeout: float = 5.0,
        client_id: str | None = None,
    ) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        parts = urlsplit(broker)
        if parts.scheme != "mqtt" or not parts.hostname:
            raise ValueError(f"an MQTT broker URL looks like mqtt://host:1883, not {broker!r}")
        self.prefix = parts.path.strip("/") or "harmonia"
        self.timeout = timeout
        self._token = token
        name = client_id or f"harmonia-probe-{secrets.token_hex(4)}"
        self.reply_to = f"{self.prefix}/_replies/{name}"
        self._ids = itertools.count(1)
        self._waiting: dict[int, tuple[threading.Event, list[dict[str, Any]]]] = {}
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=name)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = lambda *args: self._subscribed.set()
        self._client.on_message = self._on_message
        try:
            self._client.connect(parts.hostname, parts.port or 1883)
        except OSError as error:
            raise TransportError(True, f"cannot reach the broker {broker}: {error}") from error
        self._client.loop_start()
        if not self._subscribed.wait(timeout):
            self.close()
            raise TransportError(True, f"the broker {broker} did not confirm the subscription")

    def send(self, app: str, instance: str, samples: list[dict[str, Any]]) -> list[ActionMessage]:
        body = self._call(app, "telemetry", {"instance": instance, "samples": samples})
        return actions_from_reply(body)

    def report(self, app: str, action_id: int, status: str, reason: str) -> None:
        self._call(app, "result", {"status": status, "reason": reason}, action_id=action_id)

    def describe_version(
        self, app: str, model: str, version: int, description: dict[str, Any]
    ) -> None:
        self._call(app, "version", description, model=model, version=version)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def __enter__(self) -> MQTTTransport:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        client.subscribe(self.reply_to, qos=1)

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        import orjson

        try:
            reply = orjson.loads(message.payload)
            waiter = self._waiting.get(reply["id"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return
        if waiter is not None:  # a reply to a call that gave up waiting is dropped
            waiter[1].append(reply)
            waiter[0].set()

    def _call(self, app: str, call: str, body: dict[str, Any], **extra: Any) -> Any:
        """Publish one request and wait for its reply; the reply's body or a TransportError."""
        import orjson

        request_id = next(self._ids)
        arrived: tuple[threading.Event, list[dict[str, Any]]] = (threading.Event(), [])
        with self._lock:
            self._waiting[request_id] = arrived
        try:
            try:
                payload = orjson.dumps(
                    {
                        "id": request_id,
                        "reply_to": self.reply_to,
                        "token": self._token,
                        "call": call,
                        "body": body,
                        **extra,
                    }
                )
            except TypeError as error:
                raise TransportError(False, f"cannot encode the request: {error}") from error
            topic = f"{self.prefix}/{app}/requests"
            sent = self._client.publish(topic, payload, qos=1)
            if sent.rc != 0:
                raise TransportError(True, f"publish to {topic} failed (rc={sent.rc})")
            if not arrived[0].wait(self.timeout):
                raise TransportError(True, f"{call} on {topic}: no reply in {self.timeout} s")
        finally:
            with self._lock:
                self._waiting.pop(request_id, None)
        reply = arrived[1][0]
        status = int(reply.get("status", 500))
        if 200 <= status < 300:
            return reply.get("body")
        detail = reply.get("detail")
        text = detail if isinstance(detail, str) else orjson.dumps(detail).decode()
        message = f"{call} on {topic}: {status}: {text}"
        retryable = status >= 500 or status in RETRYABLE_CLIENT_ERRORS
        raise TransportError(retryable, message, status=status)
