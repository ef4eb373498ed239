"""The audit log: who did what to domains, keys, grants and applications, and how it went."""

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Query

from harmonia.server.api import API
from harmonia.server.api.deps import Caller, ServerDep, clamp_limit
from harmonia.server.domain_schemas import AuditOut
from harmonia.server.fields import APP_NAME_PATTERN
from harmonia.server.openapi import errors

router = APIRouter(prefix=API)


@router.get("/audit", response_model=list[AuditOut], responses=errors(401, 403, 422, 503))
def audit(
    server: ServerDep,
    caller: Caller,
    domain: str | None = Query(default=None, pattern=APP_NAME_PATTERN, max_length=64),
    limit: int = 100,
) -> list[dict[str, Any]]:
    """The latest ``limit`` entries of ``domain`` (its admins), or of every domain (the
    admin token), newest first."""
    entries = server.domains.audit_log(caller, domain, clamp_limit(limit))
    return [asdict(e) for e in entries]
