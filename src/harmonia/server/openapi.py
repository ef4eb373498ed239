"""What the API documents that FastAPI cannot infer from the routes' signatures.

The OpenAPI schema is a contract clients and the fuzz tests (`tests/integration/
test_api_fuzz.py`) hold the server to, so it must say what is really sent:

- errors have the shape the exception handlers write, ``{"detail": "message"}`` or
  ``{"detail": [{"field", "reason"}]}`` (`ErrorOut`), not FastAPI's ``HTTPValidationError``,
  and Harmonica's routes answer ``{"error": ...}`` (`HarmonicaErrorOut`), as Harmonica did;
- bodies that routes read raw for speed or because they are YAML (telemetry, policies) are
  documented by hand (`raw_body`, `POLICY_BODY`), with the models they are checked against
  added to the schema's components (`add_components`);
- replies that are not JSON (CSV, Parquet, event streams, Prometheus text): `text_reply`.

The models of replies and request bodies are in `harmonia.server.schemas`.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import (
    BaseModel,
    Field,
    TypeAdapter,
)

#: where OpenAPI keeps named schemas; pydantic's ``ref_template`` for them
COMPONENT_REF = "#/components/schemas/{model}"
MAX_BODY = "8 MiB"
MAX_BATCH = 10_000


# -- errors -----------------------------------------------------------------------------------
class FieldError(BaseModel):
    """One thing wrong with a request: where (``samples[3].energy_j``, ``""`` for the whole
    body) and why."""

    field: str = Field(examples=["samples[3].energy_j"])
    reason: str = Field(examples=["Input should be greater than or equal to 0"])


class ErrorOut(BaseModel):
    """Every 4xx of the API: a message, or for an invalid request every field with its
    reason."""

    detail: str | list[FieldError]


class HarmonicaErrorOut(BaseModel):
    """Harmonica's routes answer errors as Harmonica's server did, under ``error``."""

    error: str | list[FieldError]


def error_response(description: str, model: Any = ErrorOut) -> dict[str, Any]:
    """One error status as FastAPI's ``responses=`` documents it: its body's model, and when."""
    return {"model": model, "description": description}


#: every error status the API answers, with the shape of its body; routes pick theirs
ERRORS: dict[int, dict[str, Any]] = {
    400: error_response("The body cannot be read as JSON text (it is not UTF-8)"),
    401: error_response("No token, or not the admin token where the admin's is needed"),
    403: error_response("A token, but neither the application's nor the admin's"),
    404: error_response("Nothing of that name (application, policy, action, run, experiment)"),
    409: error_response("The request conflicts with what is stored (a name taken, an action done)"),
    413: error_response(f"The body is over {MAX_BODY} (refused before it is read) or too complex"),
    422: error_response("The request is invalid: each field with the reason"),
    503: error_response("The database is unreachable: retry later"),
}

HARMONICA_ERRORS: dict[int, dict[str, Any]] = {
    400: error_response(
        "Not a JSON object, or an invalid policy (each field with the reason)", HarmonicaErrorOut
    ),
    401: error_response("From outside loopback without the admin token", HarmonicaErrorOut),
    # the route's own bound answers in Harmonica's shape; the server's limit on every body
    # (checked before any route runs) in the API's
    413: error_response("The body is too large or too deeply nested", HarmonicaErrorOut | ErrorOut),
    404: error_response("No policy with that id", HarmonicaErrorOut),
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The documented error replies ``codes``, for a route's ``responses=``.

    Naming 422 also keeps FastAPI from documenting its own ``HTTPValidationError``, which is
    not what the server sends.
    """
    return {code: ERRORS[code] for code in codes}


def harmonica_errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """Harmonica's error replies ``codes``; a 422 (a path parameter FastAPI refuses) comes
    from the server's own handler, so it keeps the API's shape."""
    return {
        code: HARMONICA_ERRORS[code] if code in HARMONICA_ERRORS else ERRORS[code] for code in codes
    }


# -- request bodies read raw ----------------------------------------------------------------
def add_components(api: FastAPI, schemas: dict[str, dict[str, Any]]) -> None:
    """Make ``api``'s OpenAPI schema hold ``schemas`` as named components, so that the
    ``$ref`` of a body documented by hand (`raw_body`) resolves.

    FastAPI only collects the models of parameters it parses itself.
    """
    generate = api.openapi

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:  # generated once, then kept by FastAPI
            named = generate().setdefault("components", {}).setdefault("schemas", {})
            for name, schema in schemas.items():
                named.setdefault(name, schema)
        return api.openapi_schema or generate()

    api.openapi = openapi  # type: ignore[method-assign]


def components_of(adapter: TypeAdapter[Any], name: str) -> dict[str, dict[str, Any]]:
    """``adapter``'s JSON schema as components: ``name`` and each model it refers to."""
    schema = adapter.json_schema(ref_template=COMPONENT_REF)
    named: dict[str, dict[str, Any]] = schema.pop("$defs", {})
    named[name] = schema
    return named


def raw_body(name: str, example: Any) -> dict[str, Any]:
    """``openapi_extra`` for a JSON body that a route reads raw but checks against the
    component ``name`` (see `add_components`)."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"$ref": COMPONENT_REF.format(model=name)},
                    "example": example,
                }
            },
        }
    }


POLICY_EXAMPLE = """\
policy: traffic-switch
system: traffic
models: [linear, svm, lstm]
window: 200 samples
strategy: switch
boundaries:
  - when: quality < 0.8
    then: switch_model
"""

#: ``openapi_extra`` of the routes that take a policy: YAML or JSON text, Harmonia's format or
#: Harmonica's, validated by `harmonia.policies.parse_policy_text` (errors name each field)
POLICY_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": (
            "A policy as YAML or JSON (JSON is YAML): Harmonia's format (docs/policies.md) "
            "or Harmonica's policy JSON, which is converted."
        ),
        "content": {
            "application/json": {
                "schema": {"type": "object", "additionalProperties": True},
                "example": {
                    "policy": "traffic-switch",
                    "system": "traffic",
                    "models": ["linear", "svm", "lstm"],
                    "window": "200 samples",
                    "strategy": "switch",
                    "boundaries": [{"when": "quality < 0.8", "then": "switch_model"}],
                },
            },
            "application/yaml": {"schema": {"type": "string"}, "example": POLICY_EXAMPLE},
            "text/plain": {"schema": {"type": "string"}, "example": POLICY_EXAMPLE},
        },
    }
}


def document_body(schema: dict[str, Any], description: str, example: Any) -> dict[str, Any]:
    """``openapi_extra`` for a YAML-or-JSON document a route reads raw (JSON is YAML), checked
    against ``schema`` (which may refer to components added with `add_components`)."""
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {
                "application/json": {"schema": schema, "example": example},
                "application/yaml": {"schema": schema, "example": example},
            },
        }
    }


CONTRACT_BODY = document_body(
    {
        "anyOf": [
            {"$ref": COMPONENT_REF.format(model="Contract")},
            {"type": "object", "description": "ROHE's ServiceContract or QoA4ML's MLContract"},
        ]
    },
    "A contract as YAML or JSON: Harmonia's format (docs/contracts.md), ROHE's "
    "ServiceContract or QoA4ML's MLContract (``format``), converted.",
    {"slos": [{"name": "e2e-latency", "condition": "p99(latency_ms) <= 300", "then": "alert"}]},
)
OBSERVERS_BODY = document_body(
    {
        "anyOf": [
            {"$ref": COMPONENT_REF.format(model="ObserversConfig")},
            {"type": "array", "items": {"$ref": COMPONENT_REF.format(model="ObserverSpec")}},
        ]
    },
    "The application's observers as YAML or JSON (docs/observation.md): ``observers: [...]``,"
    " or the list itself; none turns them off.",
    {"observers": [{"name": "latency", "observer": "summary", "every": {"samples": 100}}]},
)


#: ``openapi_extra`` of ``POST /api/v1/policy/validate``: any text at all, since telling what
#: is wrong with it is the route's purpose (the reply is a 200 with the issues)
POLICY_CHECK_BODY: dict[str, Any] = {
    "requestBody": {
        "required": False,
        "description": "Text to check as a policy (YAML or JSON); anything is answered.",
        "content": {
            "application/json": {
                "schema": {},
                "example": POLICY_BODY["requestBody"]["content"]["application/json"]["example"],
            },
            "application/yaml": {"schema": {}, "example": POLICY_EXAMPLE},
            "text/plain": {"schema": {}, "example": POLICY_EXAMPLE},
        },
    }
}

HARMONICA_POLICY_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["policy_id"],
                    "properties": {
                        "policy_id": {"type": "string"},
                        "quality_attribute": {"type": "string"},
                        "adaptation_boundary": {"type": "object"},
                        "tactics": {"type": "array", "items": {"type": "object"}},
                        "secondary_boundaries": {"type": "array", "items": {"type": "object"}},
                    },
                    "additionalProperties": True,
                },
                "example": {
                    "policy_id": "reg_harmone_score",
                    "quality_attribute": "score",
                    "adaptation_boundary": {
                        "type": "STATIC_THRESHOLD",
                        "condition": "LESS_THAN",
                        "threshold": 0.78,
                    },
                    "tactics": [
                        {
                            "tactic_id": "execute_mape_plan",
                            "priority": 1,
                            "tactic_endpoint": "http://127.0.0.1:9/adaptor/tactic",
                        }
                    ],
                },
            }
        },
    }
}

HARMONICA_TELEMETRY_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "One report: the metrics a policy's quality_attribute may name.",
        "content": {
            "application/json": {
                "schema": {"type": "object", "additionalProperties": True},
                "example": {"score": 0.81, "r2_score": 0.9, "model_used": "lstm"},
            }
        },
    }
}


def text_reply(media_type: str, description: str, *, binary: bool = False) -> dict[str, Any]:
    """A 200 whose body is not JSON (CSV, Parquet, an event stream, Prometheus text)."""
    schema: dict[str, Any] = {"type": "string"}
    if binary:
        schema["format"] = "binary"
    return {"description": description, "content": {media_type: {"schema": schema}}}
