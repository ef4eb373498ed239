"""What Harmonica's routes answer and take, for the OpenAPI schema: the shapes its dashboard
and its managed-system wrapper read (recorded from Harmonica's own server), and every error
in Harmonica's ``{"error": ...}`` shape."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from harmonia.server.openapi import ERRORS, ErrorOut, HarmonicaErrorOut, error_response


class HarmonicaStatusOut(BaseModel):
    """Starting or stopping the managed system, as Harmonica answers it."""

    status: Literal["ok"]
    message: str


class HarmonicaUploadOut(BaseModel):
    """A custom system built from uploaded MAPE files; ``approach`` is in approach.conf."""

    message: str
    approach: str


class HarmonicaInterventionOut(BaseModel):
    """A tactic fired: by the primary boundary (``trigger_metric`` is the policy's
    attribute) or a secondary one (its attribute); ``trigger_value`` as it was sent."""

    model_config = ConfigDict(extra="allow")
    timestamp: float
    policy_id: str
    tactic_id: str
    trigger_value: Any
    trigger_metric: str
    status: str


class HarmonicaKnowledgeOut(BaseModel):
    """A Harmonica policy (null if none has that id) with the telemetry and interventions
    recorded under it."""

    policy: dict[str, Any] | None
    telemetry_history: list[dict[str, Any]]
    intervention_logs: list[HarmonicaInterventionOut]


ROUTE_ERRORS: dict[int, dict[str, Any]] = {
    400: error_response("Not a JSON object, or a field with the reason", HarmonicaErrorOut),
    401: error_response("From outside loopback without the admin token", HarmonicaErrorOut),
    403: error_response(
        "The route is off: the answer names the setting that turns it on", HarmonicaErrorOut
    ),
    411: error_response("An upload without Content-Length", HarmonicaErrorOut),
    # the route's own bound answers in Harmonica's shape; the server's limit on every body
    # (checked before any route runs) in the API's
    413: error_response("The body is too large or too deeply nested", HarmonicaErrorOut | ErrorOut),
    415: error_response("The body is not sent as application/json", HarmonicaErrorOut),
}


def route_errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """Harmonica's error replies ``codes``; a 422 (a path parameter FastAPI refuses) comes
    from the server's own handler, in the API's shape."""
    return {code: ROUTE_ERRORS[code] if code in ROUTE_ERRORS else ERRORS[code] for code in codes}


def json_body(schema: dict[str, Any], example: dict[str, Any]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema, "example": example}},
        }
    }


WRITE_APPROACH_BODY = json_body(
    {
        "type": "object",
        "required": ["approach"],
        "properties": {
            "approach": {"type": "string", "pattern": "^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"}
        },
    },
    {"approach": "reg_harmone_score"},
)
SET_MODEL_BODY = json_body(
    {
        "type": "object",
        "required": ["model", "system"],
        "properties": {
            "model": {"type": "string", "pattern": "^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"},
            "system": {"type": "string"},
        },
    },
    {"model": "svm", "system": "regression"},
)
SAVE_POLICY_BODY = json_body(
    {
        "type": "object",
        "required": ["policy_id"],
        "properties": {
            "policy_id": {"type": "string", "pattern": "^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"}
        },
        "additionalProperties": True,
    },
    {"policy_id": "reg_harmone_score", "quality_attribute": "score"},
)
UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["base_system", "files[]"],
                    "properties": {
                        "base_system": {"type": "string", "enum": ["regression", "cv"]},
                        "files[]": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                        },
                        "dataset": {"type": "string", "format": "binary"},
                    },
                }
            }
        },
    }
}
