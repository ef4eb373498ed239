"""What the dashboard needs beyond the core API: its static files, the admin login check,
policy presets and validation, and an overview of every application."""

import re
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse
from starlette.concurrency import run_in_threadpool

from harmonia.core.actions import ActionKind
from harmonia.core.errors import PolicyError
from harmonia.policies import dump_policy, parse_policy_text, presets
from harmonia.server.api import API
from harmonia.server.api.deps import Admin, RunsDep, ServerDep
from harmonia.server.fields import Name
from harmonia.server.observe import finite_or_none
from harmonia.server.openapi import POLICY_CHECK_BODY, errors
from harmonia.server.runs import Runs
from harmonia.server.schemas import AdminOut, AppStatusOut, PolicyCheckOut, PresetOut
from harmonia.server.service import Server
from harmonia.store import App, NotFound

STATIC = Path(__file__).resolve().parents[2] / "static"
#: what a static file's extension says about its content
MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
#: what the overview counts: every kind of action but ``none``
ACTION_KINDS = tuple(kind.value for kind in ActionKind if kind is not ActionKind.NONE)

router = APIRouter()


def plotly_js() -> Path:
    """plotly.js as the plotly wheel ships it: the dashboard needs no CDN."""
    return Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))


# -- static files -------------------------------------------------------------------------
@router.get("/", include_in_schema=False)
def index() -> HTMLResponse:
    return HTMLResponse((STATIC / "index.html").read_text())


@router.get("/static/plotly.min.js", include_in_schema=False)
def plotly() -> FileResponse:
    return FileResponse(plotly_js(), media_type="text/javascript")


@router.get("/static/{name}", include_in_schema=False)
def static(name: str) -> FileResponse:
    # one flat folder, names checked: no path is built from anything else
    path = STATIC / name
    if not re.fullmatch(r"[a-z0-9_-]+\.(js|css|svg)", name) or not path.is_file():
        raise NotFound(f"no static file {name!r}")
    return FileResponse(path, media_type=MEDIA_TYPES[path.suffix])


# -- login, presets, validation -------------------------------------------------------------
@router.get(
    f"{API}/auth", dependencies=[Admin], response_model=AdminOut, responses=errors(401, 422)
)
def auth() -> dict[str, bool]:
    """200 with the admin token, 401 without: how the dashboard checks a login."""
    return {"admin": True}


@router.get(f"{API}/presets", response_model=list[PresetOut])
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


@router.post(
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


# -- overview -------------------------------------------------------------------------------
@router.get(f"{API}/overview", response_model=list[AppStatusOut], responses=errors(503))
def overview(server: ServerDep, runs: RunsDep) -> list[dict[str, Any]]:
    """Every application as the systems overview shows it."""
    return [_status(server, runs, app) for app in server.store.apps()]


@router.get(
    f"{API}/apps/{{name}}/status",
    response_model=AppStatusOut,
    responses=errors(404, 422, 503),
)
def app_status(
    name: str, server: ServerDep, runs: RunsDep, service: Name | None = None
) -> dict[str, Any]:
    """One service of an application as the live view shows it (its first service that
    has a policy, unless ``service`` names one)."""
    app = server.app(name)
    return _status(server, runs, app, None if service is None else server.service_of(app, service))


def _status(server: Server, runs: Runs, app: App, service: str | None = None) -> dict[str, Any]:
    store = server.store
    if service is None:
        service = next(iter(server.loops(app)), app.services[0])
    loop = server.loop(app, service)
    stored = store.policy(app, service)
    counts = store.action_counts(app, service)
    view: dict[str, Any] = {
        "name": app.name,
        "owner": app.owner,
        "service": service,
        "services": app.services,
        "models": app.structure.service(service).models,
        "policy_version": None if stored is None else stored.version,
        "strategy": None,
        "quality": None,
        "model": None,
        "version": None,
        "window": None,
        "drift": {},
        "drift_detectors": [],
        "drift_watch": None,
        "violations": [],
        "actions": {k: sum(counts.get(k, {}).values()) for k in ACTION_KINDS},
        "open_actions": sum(
            n for by in counts.values() for s, n in by.items() if s in ("pending", "delivered")
        ),
        "running": [r.id for r in runs.all() if r.app == app.name and r.status == "running"],
        "latest_action": next(
            (a.__dict__ for a in store.actions(app, limit=5, service=service) if a.kind != "none"),
            None,
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
            drift_detectors=sorted(loop.engine.detector_factories),
            drift_watch=policy.drift.watch,
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
