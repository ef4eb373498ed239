"""What the dashboard needs beyond the core API: its static files, an overview of every
application, policy presets and validation, and starting or stopping reference systems and
replay-lab experiments. Writes need the admin token, as everywhere else.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from harmonia.core.errors import PolicyError
from harmonia.policies import dump_policy, parse_policy_text, presets
from harmonia.server.observe import finite_or_none
from harmonia.server.runs import SAFE, SYSTEMS, RunError, Runs
from harmonia.server.schemas import (
    EXPERIMENT_RESULTS,
    POLICY_CHECK_BODY,
    AdminOut,
    AppStatusOut,
    ExperimentOut,
    PolicyCheckOut,
    PresetOut,
    RunOut,
    errors,
)
from harmonia.store import App, Conflict, NotFound, StoreError

API = "/api/v1"
STATIC = Path(__file__).resolve().parent / "static"
#: what a static file's extension says about its content
MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
ACTION_KINDS = ("switch_model", "retrain", "reuse_version")


class RunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    system: str = Field(pattern=r"^[a-z]+$")
    app: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    preset: str | None = Field(default=None, max_length=128)
    rate: float | None = Field(default=20.0, gt=0, le=100_000)


class ExperimentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    system: str = Field(pattern=r"^[a-z]+$")
    approaches: list[str] = Field(default_factory=lambda: ["all"], max_length=20)
    limit: int | None = Field(default=None, ge=100, le=1_000_000)


def plotly_js() -> Path:
    """plotly.js as the plotly wheel ships it: the dashboard needs no CDN."""
    return Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))


def add_dashboard_routes(
    api: FastAPI,
    server: Any,
    admin: Callable[..., None],
    data_dir: Path,
) -> Runs:
    """Add the dashboard's routes to ``api``; returns the run registry (closed at shutdown)."""
    runs = Runs(data_dir / "runs", data_dir)
    experiments = data_dir / "experiments"
    store = server.store
    Admin = Depends(admin)

    # -- static files ---------------------------------------------------------------------
    @api.get("/", include_in_schema=False)
    def index() -> HTMLResponse:
        return HTMLResponse((STATIC / "index.html").read_text())

    @api.get("/static/plotly.min.js", include_in_schema=False)
    def plotly() -> FileResponse:
        return FileResponse(plotly_js(), media_type="text/javascript")

    @api.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> FileResponse:
        # one flat folder, names checked: no path is built from anything else
        path = STATIC / name
        if not re.fullmatch(r"[a-z0-9_-]+\.(js|css|svg)", name) or not path.is_file():
            raise HTTPException(404, f"no static file {name!r}")
        return FileResponse(path, media_type=MEDIA_TYPES[path.suffix])

    # -- login, presets, validation ---------------------------------------------------------
    @api.get(
        f"{API}/auth", dependencies=[Admin], response_model=AdminOut, responses=errors(401, 422)
    )
    def auth() -> dict[str, bool]:
        """200 with the admin token, 401 without: how the dashboard checks a login."""
        return {"admin": True}

    @api.get(f"{API}/presets", response_model=list[PresetOut])
    def preset_list() -> list[dict[str, Any]]:
        """The shipped example policies, as text (comments kept), with what they govern."""
        out = []
        for name, text in presets().items():
            policy = parse_policy_text(text, name)
            out.append(
                {
                    "name": name,
                    "system": policy.system,
                    "strategy": policy.strategy,
                    "models": policy.models,
                    "harmonica": name.startswith(("cv_", "reg_")),
                    "text": text,
                }
            )
        return out

    @api.post(
        f"{API}/policy/validate",
        response_model=PolicyCheckOut,
        response_model_exclude_unset=True,  # no policy nor text where it is invalid
        responses=errors(413, 422),
        openapi_extra=POLICY_CHECK_BODY,
    )
    async def validate(request: Request) -> dict[str, Any]:
        """Validate a policy without storing it: every issue with its field path. Parsed off
        the event loop, within bounds (anyone may call this)."""
        text = (await request.body()).decode("utf-8", errors="replace")  # the body limit applies
        return await run_in_threadpool(_validate, text)

    def _validate(text: str) -> dict[str, Any]:
        try:
            policy = parse_policy_text(text, "request body")
        except PolicyError as error:
            return {
                "valid": False,
                "issues": [{"field": i.path, "reason": i.reason} for i in error.issues],
            }
        # the same policy as YAML and as JSON: the editor converts and downloads with these
        return {
            "valid": True,
            "issues": [],
            "policy": policy.model_dump(mode="json", exclude_none=True),
            "text": {"yaml": dump_policy(policy), "json": dump_policy(policy, "json")},
        }

    # -- overview -------------------------------------------------------------------------
    def status(app: App) -> dict[str, Any]:
        loop = server.loop(app)
        stored = store.policy(app)
        counts = store.action_counts(app)
        view: dict[str, Any] = {
            "name": app.name,
            "owner": app.owner,
            "models": app.models,
            "policy_version": None if stored is None else stored.version,
            "strategy": None,
            "quality": None,
            "model": None,
            "version": None,
            "window": None,
            "drift": {},
            "violations": [],
            "actions": {k: sum(counts.get(k, {}).values()) for k in ACTION_KINDS},
            "open_actions": sum(
                n for by in counts.values() for s, n in by.items() if s in ("pending", "delivered")
            ),
            "running": [r.id for r in runs.all() if r.app == app.name and r.status == "running"],
            "latest_action": next(
                (a.__dict__ for a in store.actions(app, limit=5) if a.kind != "none"), None
            ),
        }
        if loop is None:
            return view
        with loop.lock:
            knowledge, policy = loop.knowledge, loop.policy
            summary = knowledge.summaries[-1] if knowledge.summaries else None
            view.update(
                strategy=policy.strategy,
                quality=policy.objective.quality,
                model=knowledge.active_model,
                version=knowledge.active_version,
            )
        if summary is not None:
            signals = summary.signals
            view["window"] = {
                "end": summary.end,
                "count": summary.count,
                "signals": {k: finite_or_none(v) for k, v in signals.items()},
            }
            view["drift"] = {
                k.removeprefix("drift."): {
                    "value": finite_or_none(v),
                    "drifted": bool(summary.drift_details.get(k[6:], {}).get("drifted", False)),
                }
                for k, v in signals.items()
                if k.startswith("drift.")
            }
            view["violations"] = [
                str(b.when) for b in policy.boundaries if b.when.evaluate(signals).fired
            ]
        return view

    @api.get(f"{API}/overview", response_model=list[AppStatusOut], responses=errors(503))
    def overview() -> list[dict[str, Any]]:
        """Every application as the systems overview shows it."""
        return [status(app) for app in store.apps()]

    @api.get(
        f"{API}/apps/{{name}}/status",
        response_model=AppStatusOut,
        responses=errors(404, 422, 503),
    )
    def app_status(name: str) -> dict[str, Any]:
        return status(server.app(name))

    # -- runs -----------------------------------------------------------------------------
    @api.get(f"{API}/systems", response_model=dict[str, list[str]])
    def systems() -> dict[str, list[str]]:
        """The reference systems a run or an experiment can start, with their models."""
        return SYSTEMS

    @api.get(f"{API}/runs", response_model=list[RunOut])
    def run_list() -> list[dict[str, Any]]:
        return [r.view() for r in runs.all() if r.kind == "system"]

    @api.post(
        f"{API}/runs",
        status_code=201,
        dependencies=[Admin],
        response_model=RunOut,
        responses=errors(400, 401, 409, 413, 422, 503),
    )
    def start_run(body: RunIn, request: Request) -> dict[str, Any]:
        """Start a reference system live; its app is registered (and its policy set from a
        preset) first when needed. The system reports through the sdk like any other."""
        if body.system not in SYSTEMS:
            raise HTTPException(422, [_issue("system", f"one of {', '.join(SYSTEMS)}")])
        name = body.app or f"{body.system}-live"
        try:
            app = server.app(name)
            token = server.issue_run_token(app.name)
        except NotFound:
            try:
                app, token = store.create_app(name, "dashboard", SYSTEMS[body.system])
            except (Conflict, StoreError) as error:
                raise HTTPException(422, [_issue("app", str(error))]) from None
        if body.preset is not None or store.policy(app) is None:
            _apply_preset(server, app, body.preset or f"{body.system}-live")
        try:
            run = runs.start_system(body.system, _own_url(request), app.name, token, body.rate)
        except RunError as error:
            raise HTTPException(409, str(error)) from None
        return run.view()

    @api.delete(
        f"{API}/runs/{{run_id}}",
        dependencies=[Admin],
        response_model=RunOut,
        responses=errors(401, 404, 422),
    )
    def stop_run(run_id: int) -> dict[str, Any]:
        try:
            return runs.stop(run_id).view()
        except LookupError as error:
            raise HTTPException(404, str(error)) from None

    # -- experiments ----------------------------------------------------------------------
    @api.get(f"{API}/experiments", response_model=list[ExperimentOut])
    def experiment_list() -> list[dict[str, Any]]:
        """Finished replay-lab results under the data directory, and experiments running."""
        running = {r.out.name: r for r in runs.all() if r.kind == "experiment" and r.out}
        out: list[dict[str, Any]] = []
        for folder in sorted(experiments.glob("*"), reverse=True):
            results = folder / "results.json"
            if results.is_file() and folder.name not in running:
                out.append({"id": folder.name, "status": "finished", "run": None})
        for name, run in running.items():
            out.insert(0, {"id": name, "status": run.status, "run": run.view()})
        return out

    @api.post(
        f"{API}/experiments",
        status_code=201,
        dependencies=[Admin],
        response_model=ExperimentOut,
        responses=errors(400, 401, 413, 422),
    )
    def start_experiment(body: ExperimentIn) -> dict[str, Any]:
        try:
            run = runs.start_experiment(body.system, body.approaches, body.limit, experiments)
        except RunError as error:
            raise HTTPException(422, [_issue("approaches", str(error))]) from None
        return {"id": run.out.name if run.out else None, "status": run.status, "run": run.view()}

    @api.get(
        f"{API}/experiments/{{experiment}}",
        response_class=Response,
        responses={200: EXPERIMENT_RESULTS, **errors(404, 422)},
    )
    def experiment(experiment: str) -> Response:
        """An experiment's ``results.json`` (approaches, frontier, timelines)."""
        results = experiments / experiment / "results.json"
        if not SAFE.match(experiment) or ".." in experiment or not results.is_file():
            raise HTTPException(404, f"no finished experiment {experiment!r}")
        return Response(results.read_bytes(), media_type="application/json")

    return runs


def _own_url(request: Request) -> str:
    """The address this request reached, from the socket, not from the Host header (which
    the client chooses: a run must not follow it to another host)."""
    server = request.scope.get("server")
    if not server:
        raise HTTPException(500, "the server's own address is unknown")
    host, port = server[0], server[1]
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _apply_preset(server: Any, app: App, preset: str) -> None:
    text = presets().get(preset)
    if text is None:
        raise HTTPException(422, [_issue("preset", f"no preset named {preset!r}")])
    policy = parse_policy_text(text, preset).model_copy(update={"system": app.name})
    try:
        server.apply_policy(app, orjson.dumps(policy.model_dump(mode="json")).decode())
    except PolicyError as error:
        raise HTTPException(422, [_issue(i.path, i.reason) for i in error.issues]) from None


def _issue(field: str, reason: str) -> dict[str, str]:
    return {"field": field, "reason": reason}


__all__ = ["add_dashboard_routes", "plotly_js"]
