"""Schemathesis against a live server, on SQLite and on PostgreSQL.

Every operation of the server's OpenAPI schema is called with generated requests, valid and
invalid (the documented examples, boundary values, then random ones), and every reply must be
no 5xx and exactly what the schema says: a documented status, its content type, a body of its
schema. So the schema is a contract the server keeps, and a request nobody thought of cannot
crash the server.

The server is real (uvicorn on loopback, `BackgroundServer`) and holds an application with a
policy, a described version, telemetry, a decided action, a Harmonica policy and a finished
experiment, so that requests reach past "not found". Each request is rewritten before it is
sent (`_aim`) so that most name those and carry the admin token, while some go without a
token, with the application's own, or with whatever the generator made up.

``HARMONIA_FUZZ_SEED`` picks another seed (the default one keeps runs reproducible), and
``HARMONIA_FUZZ_EXAMPLES`` the number of random examples per operation.
"""

from __future__ import annotations

import os
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from databases import BACKENDS, database
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from test_server_api import POLICY, samples

from harmonia.server.app import create_app
from harmonia.server.background import BackgroundServer
from harmonia.store import Store, sqlite_url

pytestmark = pytest.mark.slow

ADMIN = "fuzz-admin-token"
APP = "traffic"
HARMONICA_POLICY = "reg_fuzz_score"
EXPERIMENT = "fuzz-experiment"
SEED = int(os.environ.get("HARMONIA_FUZZ_SEED", "20260101"))
EXAMPLES = int(os.environ.get("HARMONIA_FUZZ_EXAMPLES", "25"))
#: what a reply must be, whatever the request (`negative_data_rejection`: a request the schema
#: forbids is refused with a 4xx, never accepted)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
]
#: Operations that start processes (a reference system, a replay-lab experiment) are fuzzed
#: only without the admin token: their guard and body checks are exercised, and nothing can
#: start (the admin check runs before the body is read).
STARTS_PROCESSES = {("POST", "/api/v1/runs"), ("POST", "/api/v1/experiments")}


@dataclass(frozen=True)
class Known:
    """What the server holds that requests may name, beyond the fixed names (`APP`,
    `HARMONICA_POLICY`, `EXPERIMENT`): the application's token and an action it decided."""

    app_token: str
    action_id: int


@pytest.fixture(scope="module", params=BACKENDS)
def store_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A fresh database of each backend (PostgreSQL: one of this run's own, dropped after;
    skipped where there is none, except in CI)."""
    with database(request.param, tmp_path_factory.mktemp("fuzz-db")) as url:
        yield url


@pytest.fixture(scope="module")
def live(store_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Known]]:
    """A live server over ``store_url``, holding what the requests name."""
    data_dir = tmp_path_factory.mktemp("fuzz-data")
    results = data_dir / "experiments" / EXPERIMENT / "results.json"
    results.parent.mkdir(parents=True)
    results.write_text('{"approaches": [], "frontier": []}')
    store = Store(store_url)
    try:
        with BackgroundServer(store, ADMIN, data_dir=data_dir) as url:
            yield url, _populate(url)
    finally:
        store.close()


def _populate(url: str) -> Known:
    """Register the application and give it a policy, a version, telemetry (which decides an
    action) and a Harmonica policy, through the API as a user would."""
    admin = {"Authorization": f"Bearer {ADMIN}"}
    with httpx.Client(base_url=url, timeout=30) as client:
        reply = client.post(
            "/api/v1/apps",
            json={"name": APP, "owner": "fuzz", "models": ["linear", "svm", "lstm"]},
            headers=admin,
        )
        assert reply.status_code == 201, reply.text
        token = reply.json()["token"]
        mine = {"Authorization": f"Bearer {token}"}
        reply = client.put(
            f"/api/v1/apps/{APP}/policy",
            content=POLICY,
            headers={**mine, "Content-Type": "application/yaml"},
        )
        assert reply.status_code == 201, reply.text
        reply = client.put(
            f"/api/v1/apps/{APP}/models/lstm/versions/1",
            json={"fingerprint": [0.1, 0.5, 0.9], "details": {"r2": 0.9}},
            headers=mine,
        )
        assert reply.status_code == 201, reply.text
        reply = client.post(
            f"/api/v1/apps/{APP}/telemetry",
            json={"instance": "edge-1", "samples": samples("lstm", 60, 0.2)},
            headers=mine,
        )
        assert reply.status_code == 200, reply.text
        actions = reply.json()["actions"]
        assert actions, "a window of poor quality decides an action"
        reply = client.post(
            "/api/policy",
            json={
                "policy_id": HARMONICA_POLICY,
                "quality_attribute": "score",
                "adaptation_boundary": {"condition": "LESS_THAN", "threshold": 0.5},
                "tactics": [],
            },
        )
        assert reply.status_code == 201, reply.text
    return Known(app_token=token, action_id=int(actions[0]["id"]))


def _bucket(case: schemathesis.Case, salt: str, buckets: int) -> int:
    """A stable choice for ``case``: the same request is always rewritten the same way, so a
    failure replays exactly, while different requests spread over every choice (the
    generated headers count too: an operation without parameters varies only there)."""
    headers = sorted((case.headers or {}).items())
    seen = repr((salt, case.path_parameters, case.query, headers, case.body))
    return zlib.crc32(seen.encode("utf-8", "surrogatepass")) % buckets


def _negative(case: schemathesis.Case, location: ParameterLocation) -> bool:
    """Whether the generator made ``location`` invalid on purpose: then it is sent as made,
    so that `negative_data_rejection` judges what was really sent."""
    return case.meta is not None and case.meta.is_negative_at(location)


def _aim(case: schemathesis.Case, known: Known) -> None:
    """Name what exists in most requests and send the admin token with most: a generated
    name is almost never registered, and without a token the routes refuse before they do
    anything worth testing."""
    parameters = case.path_parameters
    if parameters and not _negative(case, ParameterLocation.PATH):
        if "name" in parameters and _bucket(case, "name", 5):
            parameters["name"] = APP
        if "action_id" in parameters and _bucket(case, "action", 3) == 0:
            parameters["action_id"] = known.action_id
        if "model" in parameters and _bucket(case, "model", 2):
            parameters["model"] = "lstm"
        if "policy_id" in parameters and _bucket(case, "policy", 2):
            parameters["policy_id"] = HARMONICA_POLICY
        if "experiment" in parameters and _bucket(case, "experiment", 2):
            parameters["experiment"] = EXPERIMENT
    if _negative(case, ParameterLocation.HEADER):
        return
    if case.headers is None:
        case.headers = {}
    if (case.method.upper(), case.operation.path) in STARTS_PROCESSES:
        case.headers.pop("authorization", None)
        return
    choice = _bucket(case, "token", 10)
    if choice == 0:  # no token at all
        case.headers.pop("authorization", None)
    elif choice > 1:  # (1: whatever the generator made up, if anything)
        token = known.app_token if choice == 2 else ADMIN
        case.headers["Authorization"] = f"Bearer {token}"


def _documented() -> dict[str, Any]:
    """The OpenAPI schema the server serves (its routes do not depend on what is stored;
    `test_the_live_server_serves_the_schema_fuzzed` checks that it is the one served).

    Built when the module is collected, because pytest needs the operations then.
    """
    with tempfile.TemporaryDirectory() as folder:
        store = Store(sqlite_url(Path(folder)))
        try:
            return create_app(store, ADMIN, data_dir=Path(folder)).openapi()
        finally:
            store.close()


DOCUMENTED = _documented()
schema = schemathesis.openapi.from_dict(
    DOCUMENTED,
    config=schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "request-timeout": 10,
            # the tokens are this test's own: show failing requests as they were sent
            "output": {"sanitization": {"enabled": False}},
            "generation": {"max-examples": EXAMPLES, "database": "none"},
            "operations": [
                {
                    # an event stream never ends: read what comes within a second, hang up
                    "include-path": "/api/v1/apps/{name}/stream",
                    "request-timeout": 1,
                    "generation": {"max-examples": 5},
                }
            ],
        }
    ),
)


@schema.parametrize()
def test_every_operation_keeps_its_contract(
    case: schemathesis.Case, live: tuple[str, Known]
) -> None:
    url, known = live
    _aim(case, known)
    case.call_and_validate(base_url=url, checks=CHECKS)


def test_the_live_server_serves_the_schema_fuzzed(live: tuple[str, Known]) -> None:
    url, _ = live
    assert httpx.get(f"{url}/openapi.json").json() == DOCUMENTED


def test_the_schema_documents_every_operation() -> None:
    """Bodies, replies and errors are documented with the shapes really sent: no operation
    without a reply schema, no FastAPI ``HTTPValidationError`` (the server never sends it)."""
    document = DOCUMENTED
    components = document["components"]["schemas"]
    assert "HTTPValidationError" not in components
    assert {"BatchIn", "SampleIn", "ErrorOut", "TelemetryOut"} <= set(components)
    telemetry = document["paths"]["/api/v1/apps/{name}/telemetry"]["post"]
    body = telemetry["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/BatchIn"}
    policy = document["paths"]["/api/v1/apps/{name}/policy"]["put"]["requestBody"]["content"]
    assert {"application/json", "application/yaml", "text/plain"} <= set(policy)
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            success = [s for s in operation["responses"] if s.startswith("2")]
            assert success, where
            for status in success:
                content = operation["responses"][status]["content"]
                assert all(media.get("schema") for media in content.values()), where
            if "422" in operation["responses"]:
                shape = operation["responses"]["422"]["content"]["application/json"]["schema"]
                assert shape == {"$ref": "#/components/schemas/ErrorOut"}, where
