"""The server's MQTT side: the calls a probe makes over HTTP, as request and reply messages
through a broker, for managed systems that already speak MQTT (edge devices, IoT gateways).

A system publishes a request to ``<prefix>/<app>/requests`` at QoS 1 (the prefix is the path
of the broker URL, ``harmonia`` by default)::

    {"id": 7, "reply_to": "harmonia/_replies/cam-1", "token": "...",
     "call": "telemetry" | "result" | "version", "body": {...},
     "action_id": 3 (result), "model": "svm", "version": 2 (version)}

and the bridge answers on ``reply_to`` with ``{"id": 7, "status": 200, "body": {...}}`` or
``{"id": 7, "status": 422, "detail": ...}`` — the status and body the HTTP route would give,
because the bridge calls the same `Server` methods. Requests are handled one at a time, in
the order they arrive, on one worker thread (the broker's network thread only queues them).
"""

from __future__ import annotations

import logging
import secrets
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal
from urllib.parse import urlsplit

import orjson
from fastapi import HTTPException
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harmonia.server.app import ResultIn, Server, VersionIn, field_errors

logger = logging.getLogger("harmonia.server.mqtt")
DEFAULT_PREFIX = "harmonia"


class RequestIn(BaseModel):
    """The envelope of one request."""

    model_config = ConfigDict(extra="forbid")
    id: int | str
    reply_to: str = Field(min_length=1, max_length=256)
    token: str = Field(default="", max_length=256)
    call: Literal["telemetry", "result", "version"]
    body: dict[str, Any]
    action_id: int | None = None
    model: str | None = Field(default=None, max_length=128)
    version: int | None = None


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
        reply: dict[str, Any] = {"id": request.id}
        try:
            reply["body"] = self._call(app_name, request)
            reply["status"] = 200
        except HTTPException as error:
            reply.update(status=error.status_code, detail=error.detail)
        except ValidationError as error:
            reply.update(status=422, detail=field_errors(error))
        except Exception:
            logger.exception("an MQTT request for %s failed", app_name)
            reply.update(status=500, detail="internal error")
        self.client.publish(request.reply_to, orjson.dumps(reply), qos=1)

    def _call(self, app_name: str, request: RequestIn) -> dict[str, Any]:
        app = self.server.authorize(app_name, request.token or None)
        if request.call == "telemetry":
            return self.server.ingest(app, request.body)
        if request.call == "result":
            if request.action_id is None:
                raise HTTPException(422, [{"field": "action_id", "reason": "is required"}])
            result = ResultIn.model_validate(request.body)
            return self.server.finish_action(app, request.action_id, result)
        if request.model is None or request.version is None:
            raise HTTPException(422, [{"field": "model", "reason": "model and version needed"}])
        description = VersionIn.model_validate(request.body)
        return self.server.describe_version(app, request.model, request.version, description)
