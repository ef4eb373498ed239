"""What the broker bridges (MQTT, AMQP) share: the request envelope and how a request is
answered — by the same `Server` methods the HTTP routes call, with the status and body the
HTTP route would give, so a probe sees the same answers whatever carries them.

A request::

    {"id": 7, "token": "...", "call": "telemetry" | "result" | "version", "body": {...},
     "idempotency_key": "..." (telemetry, optional),
     "action_id": 3 (result), "model": "svm", "version": 2 (version),
     "app": "traffic" and "reply_to": "..." where the broker does not carry them}

and its reply ``{"id": 7, "status": 200, "body": {...}}`` or ``{"id": 7, "status": 422,
"detail": ...}``.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harmonia.server.errors import DOMAIN_ERRORS, Invalid, status_of
from harmonia.server.fields import INT32_MAX
from harmonia.server.schemas import ResultIn, VersionIn, field_errors
from harmonia.server.service import Server

logger = logging.getLogger("harmonia.server.messaging")


class RequestIn(BaseModel):
    """The envelope of one request."""

    model_config = ConfigDict(extra="forbid")
    id: int | str
    app: str | None = Field(default=None, max_length=64)
    reply_to: str | None = Field(default=None, max_length=256)
    token: str = Field(default="", max_length=256)
    call: Literal["telemetry", "result", "version"]
    body: dict[str, Any]
    action_id: int | None = Field(default=None, ge=1, le=INT32_MAX)
    model: str | None = Field(default=None, max_length=128)
    version: int | None = Field(default=None, ge=1, le=INT32_MAX)
    idempotency_key: str | None = Field(default=None, max_length=128)


def answer(server: Server, app_name: str, request: RequestIn) -> dict[str, Any]:
    """Carry out one request; the reply (never raises)."""
    reply: dict[str, Any] = {"id": request.id}
    try:
        reply["body"] = _call(server, app_name, request)
        reply["status"] = 200
    except DOMAIN_ERRORS as error:
        status, detail = status_of(error)
        reply.update(status=status, detail=detail)
    except ValidationError as error:
        reply.update(status=422, detail=field_errors(error))
    except Exception:
        logger.exception("a request for %s failed", app_name)
        reply.update(status=500, detail="internal error")
    return reply


def _call(server: Server, app_name: str, request: RequestIn) -> dict[str, Any]:
    app = server.authorize(app_name, request.token or None)
    if request.call == "telemetry":
        return server.ingest(app, request.body, request.idempotency_key)
    if request.call == "result":
        if request.action_id is None:
            raise Invalid([{"field": "action_id", "reason": "is required"}])
        return server.finish_action(app, request.action_id, ResultIn.model_validate(request.body))
    if request.model is None or request.version is None:
        raise Invalid([{"field": "model", "reason": "model and version needed"}])
    description = VersionIn.model_validate(request.body)
    return server.describe_version(app, request.model, request.version, description)
