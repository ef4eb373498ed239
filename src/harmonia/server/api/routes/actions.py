"""Adaptation actions: the history, and the managed system's report of one it carried out."""

from typing import Any

from fastapi import APIRouter

from harmonia.server.api import API
from harmonia.server.api.deps import AppAuth, KnownApp, ServerDep, clamp_limit
from harmonia.server.errors import Invalid
from harmonia.server.fields import ActionId, Name
from harmonia.server.openapi import errors
from harmonia.server.schemas import ActionOut, ActionResultOut, ResultIn
from harmonia.store import StoreError

router = APIRouter(prefix=API)


@router.post(
    "/apps/{name}/actions/{action_id}/result",
    response_model=ActionResultOut,
    responses=errors(400, 401, 403, 404, 409, 413, 422, 503),
)
def action_result(
    app: AppAuth, action_id: ActionId, body: ResultIn, server: ServerDep
) -> dict[str, Any]:
    return server.finish_action(app, action_id, body)


@router.get(
    "/apps/{name}/actions",
    response_model=list[ActionOut],
    responses=errors(404, 422, 503),
)
def actions(
    app: KnownApp,
    server: ServerDep,
    status: str | None = None,
    start: float | None = None,
    end: float | None = None,
    limit: int = 100,
    service: Name | None = None,
) -> list[dict[str, Any]]:
    """Adaptation events (of every service, or of one), newest first: each action with the
    service it aims at, the boundary that fired it (``trigger``), the values it read, the
    strategy's reasoning and its outcome."""
    try:
        found = server.store.actions(app, status, clamp_limit(limit), start, end, service=service)
    except StoreError as error:
        raise Invalid([{"field": "status", "reason": str(error)}]) from None
    return [a.__dict__ for a in found]
