"""`MQTTTransport`: the wire contract through an MQTT broker, for systems that speak MQTT.

Each call is a request published at QoS 1 to ``<prefix>/<app>/requests`` and answered by the
server's bridge on this transport's own reply topic (see `harmonia.server.bridges.mqtt`); the call
waits for its reply, so `Probe` gets the same answers, actions and retry decisions as over
HTTP. paho-mqtt is imported when the transport is built (``pip install harmonia[mqtt]``).
"""

from __future__ import annotations

import itertools
import secrets
import threading
from typing import Any
from urllib.parse import urlsplit

from harmonia.sdk._envelope import BrokerTransport, reply_body, request_payload
from harmonia.sdk._transport import TransportError

DEFAULT_PREFIX = "harmonia"


def broker_address(url: str) -> tuple[str, int, str]:
    """``mqtt://host:port/prefix`` as (host, port, topic prefix); the port defaults to 1883
    and the prefix to ``harmonia``.

    >>> broker_address("mqtt://127.0.0.1:1884")
    ('127.0.0.1', 1884, 'harmonia')
    >>> broker_address("mqtt://broker/site-a")
    ('broker', 1883, 'site-a')
    """
    parts = urlsplit(url)
    if parts.scheme != "mqtt" or not parts.hostname:
        raise ValueError(f"an MQTT broker URL looks like mqtt://host:1883, not {url!r}")
    prefix = parts.path.strip("/") or DEFAULT_PREFIX
    if any(c in prefix for c in "+#") or len(prefix) > 128:
        raise ValueError(f"the topic prefix {prefix!r} may not hold MQTT wildcards")
    return parts.hostname, parts.port or 1883, prefix


class MQTTTransport(BrokerTransport):
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

        host, port, self.prefix = broker_address(broker)
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
            self._client.connect(host, port)
        except OSError as error:
            raise TransportError(True, f"cannot reach the broker {broker}: {error}") from error
        self._client.loop_start()
        if not self._subscribed.wait(timeout):
            self.close()
            raise TransportError(True, f"the broker {broker} did not confirm the subscription")

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

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
        request_id = next(self._ids)
        payload = request_payload(
            request_id, self._token, call, body, reply_to=self.reply_to, **extra
        )
        topic = f"{self.prefix}/{app}/requests"
        arrived: tuple[threading.Event, list[dict[str, Any]]] = (threading.Event(), [])
        with self._lock:
            self._waiting[request_id] = arrived
        try:
            sent = self._client.publish(topic, payload, qos=1)
            if sent.rc != 0:
                raise TransportError(True, f"publish to {topic} failed (rc={sent.rc})")
            if not arrived[0].wait(self.timeout):
                raise TransportError(True, f"{call} on {topic}: no reply in {self.timeout} s")
        finally:
            with self._lock:
                self._waiting.pop(request_id, None)
        return reply_body(arrived[1][0], f"{call} on {topic}")
