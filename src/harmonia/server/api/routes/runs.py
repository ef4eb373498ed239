"""What the dashboard starts and stops: reference systems run live, and replay-lab
experiments (`harmonia.server.runs`). Starting or stopping needs the admin token."""

from pathlib import Path
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from harmonia.policies import parse_policy_text, presets
from harmonia.server.api import API
from harmonia.server.api.deps import Admin, RunsDep, ServerDep
from harmonia.server.errors import Internal, Invalid
from harmonia.server.openapi import errors
from harmonia.server.runs import SAFE, SYSTEMS, RunBusy, RunError, Runs
from harmonia.server.schemas import EXPERIMENT_RESULTS, ExperimentOut, RunOut
from harmonia.server.service import Server
from harmonia.store import App, Conflict, NotFound, StoreError
from harmonia.systems import reference_system

router = APIRouter(prefix=API)


class RunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    system: str = Field(pattern=r"^[a-z]+$")
    app: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    preset: str | None = Field(default=None, max_length=128)
    rate: float | None = Field(default=20.0, gt=0, le=100_000)
    #: play the system's data round and round until the run is stopped (the demo's)
    loop: bool = False


class ExperimentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    system: str = Field(pattern=r"^[a-z]+$")
    approaches: list[str] = Field(default_factory=lambda: ["all"], max_length=20)
    limit: int | None = Field(default=None, ge=100, le=1_000_000)


# -- runs -----------------------------------------------------------------------------------
@router.get("/systems", response_model=dict[str, list[str]])
def systems() -> dict[str, list[str]]:
    """The reference systems a run or an experiment can start, with their models."""
    return SYSTEMS


@router.get("/runs", response_model=list[RunOut])
def run_list(runs: RunsDep) -> list[dict[str, Any]]:
    return [r.view() for r in runs.all() if r.kind == "system"]


@router.post(
    "/runs",
    status_code=201,
    dependencies=[Admin],
    response_model=RunOut,
    responses=errors(400, 401, 409, 413, 422, 503),
)
def start_run(body: RunIn, request: Request, server: ServerDep, runs: RunsDep) -> dict[str, Any]:
    """Start a reference system live; its app is registered (and its policy set from a
    preset) first when needed. The system reports through the sdk like any other.

    An app that already has a run going is refused (409, naming that run) before anything
    is changed: a second run would feed the same loop with a second stream and obey its
    actions too, and the preset it asked for would replace the policy the first one runs
    under."""
    if body.system not in SYSTEMS:
        raise Invalid([_issue("system", f"one of {', '.join(SYSTEMS)}")])
    reference = reference_system(body.system)
    name = body.app or f"{body.system}-live"
    busy = runs.running(name)
    if busy is not None:
        raise Conflict(str(RunBusy(busy)))
    try:
        app = server.app(name)
        token = server.issue_run_token(app.name)
    except NotFound:
        try:
            app, token = server.store.create_app(reference.application(name))
        except (Conflict, StoreError, ValueError) as error:
            raise Invalid([_issue("app", str(error))]) from None
    if body.preset is not None:
        _apply_preset(server, app, body.preset)
    elif not server.store.policies(app):
        # a pipeline's adapting services each get their own shipped policy
        chosen: list[tuple[str | None, str]] = [*reference.live_presets.items()]
        for service, preset in chosen or [(None, reference.live_preset)]:
            _apply_preset(server, app, preset, service)
    try:
        run = runs.start_system(
            body.system, _own_url(request), app.name, token, body.rate, body.loop
        )
    except RunBusy as error:  # started by another request since the check above
        raise Conflict(str(error)) from None
    except RunError as error:
        raise Invalid([_issue("run", str(error))]) from None
    return run.view()


@router.delete(
    "/runs/{run_id}",
    dependencies=[Admin],
    response_model=RunOut,
    responses=errors(401, 404, 422),
)
def stop_run(run_id: int, runs: RunsDep) -> dict[str, Any]:
    try:
        return runs.stop(run_id).view()
    except LookupError as error:
        raise NotFound(str(error)) from None


# -- experiments ----------------------------------------------------------------------------
@router.get("/experiments", response_model=list[ExperimentOut])
def experiment_list(runs: RunsDep) -> list[dict[str, Any]]:
    """Finished replay-lab results under the data directory, and experiments running."""
    running = {r.out.name: r for r in runs.all() if r.kind == "experiment" and r.out}
    out: list[dict[str, Any]] = []
    for folder in sorted(_experiments(runs).glob("*"), reverse=True):
        results = folder / "results.json"
        if results.is_file() and folder.name not in running:
            out.append({"id": folder.name, "status": "finished", "run": None})
    for name, run in running.items():
        out.insert(0, {"id": name, "status": run.status, "run": run.view()})
    return out


@router.post(
    "/experiments",
    status_code=201,
    dependencies=[Admin],
    response_model=ExperimentOut,
    responses=errors(400, 401, 413, 422),
)
def start_experiment(body: ExperimentIn, runs: RunsDep) -> dict[str, Any]:
    try:
        run = runs.start_experiment(body.system, body.approaches, body.limit, _experiments(runs))
    except RunError as error:
        raise Invalid([_issue("approaches", str(error))]) from None
    return {"id": run.out.name if run.out else None, "status": run.status, "run": run.view()}


@router.get(
    "/experiments/{experiment}",
    response_class=Response,
    responses={200: EXPERIMENT_RESULTS, **errors(404, 422)},
)
def experiment(experiment: str, runs: RunsDep) -> Response:
    """An experiment's ``results.json`` (approaches, frontier, timelines)."""
    results = _experiments(runs) / experiment / "results.json"
    if not SAFE.match(experiment) or ".." in experiment or not results.is_file():
        raise NotFound(f"no finished experiment {experiment!r}")
    return Response(results.read_bytes(), media_type="application/json")


def _experiments(runs: Runs) -> Path:
    """Where the replay lab's experiments write their results."""
    return runs.data_dir / "experiments"


def _own_url(request: Request) -> str:
    """The address this request reached, from the socket, not from the Host header (which
    the client chooses: a run must not follow it to another host)."""
    server = request.scope.get("server")
    if not server:
        raise Internal("the server's own address is unknown")
    host, port = server[0], server[1]
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _apply_preset(server: Server, app: App, preset: str, service: str | None = None) -> None:
    """Set the policy of ``app``'s ``service`` (its only one by default) from a preset; a
    `PolicyError` is a 422 naming each field."""
    text = presets().get(preset)
    if text is None:
        raise Invalid([_issue("preset", f"no preset named {preset!r}")])
    policy = parse_policy_text(text, preset).model_copy(update={"system": app.name})
    server.apply_policy(app, orjson.dumps(policy.model_dump(mode="json")).decode(), service)


def _issue(field: str, reason: str) -> dict[str, str]:
    return {"field": field, "reason": reason}
