"""Applications: registration, the list, one app."""

from typing import Any

from fastapi import APIRouter

from harmonia.server.api import API
from harmonia.server.api.deps import Admin, KnownApp, ServerDep
from harmonia.server.schemas import AppIn, AppOut, RegisteredAppOut, errors
from harmonia.store import App

router = APIRouter(prefix=API)


@router.post(
    "/apps",
    status_code=201,
    dependencies=[Admin],
    response_model=RegisteredAppOut,
    responses=errors(400, 401, 409, 413, 422, 503),
)
def register(body: AppIn, server: ServerDep) -> dict[str, Any]:
    return server.register(body)


@router.get("/apps", response_model=list[AppOut], responses=errors(503))
def apps(server: ServerDep) -> list[dict[str, Any]]:
    return [_app_view(a) for a in server.store.apps()]


@router.get("/apps/{name}", response_model=AppOut, responses=errors(404, 422, 503))
def app_detail(app: KnownApp) -> dict[str, Any]:
    return _app_view(app)


def _app_view(app: App) -> dict[str, Any]:
    return {
        "id": app.id,
        "name": app.name,
        "owner": app.owner,
        "models": app.models,
        "services": app.services,
        "effector_url": app.effector_url,
        "created": app.created,
    }
