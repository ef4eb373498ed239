"""The server's MQTT side: the calls a probe makes over HTTP, as request and reply messages
through a broker, for managed systems that already speak MQTT (edge devices, IoT gateways).

A system publishes a request (see `harmonia.server.bridges.messaging`) to
``<prefix>/<app>/requests`` at QoS 1, naming its ``reply_to`` topic; the prefix is the path
of the broker URL, ``harmonia`` by default. The bridge answers on ``reply_to``. Requests are
handled one at a time, in the order they arrive, on one worker thread (the broker's network
thread only queues them).
"""

from __future__ import annotations

import logging
import secrets
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
from pydantic import ValidationError

from harmonia.sdk._mqtt import broker_address
from harmonia.server.bridges.messaging import RequestIn, answer
from harmonia.server.service import Server

logger = logging.getLogger("harmonia.server.mqtt")


class MQTTBridge:
    """Subscribes to every app's requests on the broker and answers each one."""

    def __init__(self, server: Server, url: str) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.server = server
        self.host, self.port, self.prefix = broker_address(url)
        self._jobs = ThreadPoolExecutor(max_workers=1, thread_name_prefix="harmonia-mqtt")
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"harmonia-server-{secrets.token_hex(4)}",
        )
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message

    def start(self) -> None:
        self.client.connect(self.host, self.port)
        self.client.loop_start()

    def stop(self) -> None:
        self._jobs.shutdown(wait=True)
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        # (re)subscribe on every connection: a broker restart forgets subscriptions
        client.subscribe(f"{self.prefix}/+/requests", qos=1)

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        self._jobs.submit(self._handle, message.topic, message.payload)

    def _handle(self, topic: str, payload: bytes) -> None:
        app_name = topic.split("/")[-2]
        try:
            request = RequestIn.model_validate_json(payload)
        except ValidationError as error:
            # Without a valid envelope there is no reply_to to answer on.
            logger.warning("dropped a malformed MQTT request on %s: %s", topic, error)
            return
        if request.reply_to is None:
            logger.warning("dropped an MQTT request on %s without reply_to", topic)
            return
        reply = answer(self.server, app_name, request)
        self.client.publish(request.reply_to, orjson.dumps(reply), qos=1)
