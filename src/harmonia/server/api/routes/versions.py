"""An application's models and the versions the managed system describes."""

from typing import Any

from fastapi import APIRouter

from harmonia.server.api import API
from harmonia.server.api.deps import AppAuth, KnownApp, ServerDep
from harmonia.server.fields import VersionPath
from harmonia.server.observe import finite_row
from harmonia.server.openapi import errors
from harmonia.server.schemas import ModelOut, VersionIn, VersionOut
from harmonia.server.service import version_view

router = APIRouter(prefix=API)


@router.put(
    "/apps/{name}/models/{model}/versions/{version}",
    status_code=201,
    response_model=VersionOut,
    responses=errors(400, 401, 403, 404, 413, 422, 503),
)
def put_version(
    app: AppAuth, model: str, version: VersionPath, body: VersionIn, server: ServerDep
) -> dict[str, Any]:
    """The managed system describes one of its model versions (held-out quality, energy
    per inference, training cost, the fingerprint of its training data)."""
    return server.describe_version(app, model, version, body)


@router.get(
    "/apps/{name}/models",
    response_model=list[ModelOut],
    responses=errors(404, 422, 503),
)
def models(app: KnownApp, server: ServerDep) -> list[dict[str, Any]]:
    """Each model of each service: the versions it described, which one is current,
    whether it is in service, and what it achieved in the windows it served."""
    described = server.store.versions(app)
    out = []
    for service in app.structure.services:
        loop = server.loop(app, service.name)
        for model in service.models:
            view: dict[str, Any] = {
                "service": service.name,
                "model": model,
                "versions": [
                    version_view(v)
                    for v in described
                    if (v.service, v.model) == (service.name, model)
                ],
                "in_service": False,
                "current_version": None,
                "profile": None,
            }
            if loop is not None and model in loop.knowledge.models:
                with loop.lock:
                    knowledge = loop.knowledge
                    view["in_service"] = knowledge.active_model == model
                    view["current_version"] = knowledge.current_versions[model]
                    view["profile"] = finite_row(dict(knowledge.profiles[model].__dict__))
            out.append(view)
    return out
