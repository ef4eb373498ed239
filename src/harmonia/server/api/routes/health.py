"""Liveness (``/healthz``), readiness (``/readyz``) and Prometheus metrics.

``/healthz`` says only that the process answers: a liveness probe that restarts a replica
whose database is down would restart every replica at once and cure nothing. ``/readyz``
says whether this replica can serve: the database answers and is at the newest migration
this version knows (a replica of an older version, after a newer one migrated, or over a
database migrated by nobody, is taken out of the load balancer rather than failing requests).
"""

import logging

from fastapi import APIRouter
from fastapi.responses import Response
from sqlalchemy.exc import SQLAlchemyError

from harmonia.server.api.deps import ServerDep
from harmonia.server.observe import prometheus
from harmonia.server.openapi import errors, text_reply
from harmonia.server.schemas import HealthOut, MigrationsCheck, ReadyCheck, ReadyOut
from harmonia.store import Store
from harmonia.store.base import head_revisions, known_revisions

logger = logging.getLogger("harmonia.server")
router = APIRouter()
#: the longest reason a failed check quotes from the database driver
MAX_REASON = 200


@router.get("/healthz", response_model=HealthOut)
async def health() -> dict[str, str]:
    # async: answered on the event loop, never queued behind the thread pool
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=ReadyOut,
    responses={
        503: {
            "model": ReadyOut,
            "description": "Not ready: the database is unreachable, or not at the newest "
            "migration; ``detail`` names which",
        }
    },
)
def ready(server: ServerDep, response: Response) -> ReadyOut:
    # not async: it waits on the database, in the thread pool, never on the event loop
    report = readiness(server.store)
    if report.status != "ready":
        response.status_code = 503
    return report


def readiness(store: Store) -> ReadyOut:
    """Whether ``store``'s database answers and is at the newest migration this version of
    Harmonia knows; ``detail`` names each condition that does not hold."""
    head = list(head_revisions())
    try:
        current = list(store.current_revisions())
    except SQLAlchemyError as error:
        reason = f"database unreachable: {_reason(error)}"
        # once per probe while it lasts: one line, the traceback only when debugging
        logger.warning("not ready: %s", reason)
        logger.debug("the database check failed", exc_info=True)
        return ReadyOut(
            status="not ready",
            detail=reason,
            database=ReadyCheck(ok=False, detail=reason),
            migrations=MigrationsCheck(
                ok=False,
                detail="not checked: the database is unreachable",
                current=[],
                head=head,
            ),
        )
    at = f"at {_revisions(current)}, head {_revisions(head)}"
    database = ReadyCheck(ok=True, detail="reachable")
    if current != head:
        unknown = [r for r in current if r not in known_revisions()]
        if unknown:
            at += f"; {_revisions(unknown)} unknown to this version (a newer one migrated)"
        detail = f"migrations not current ({at})"
        migrations = MigrationsCheck(ok=False, detail=detail, current=current, head=head)
        return ReadyOut(status="not ready", detail=detail, database=database, migrations=migrations)
    migrations = MigrationsCheck(ok=True, detail=at, current=current, head=head)
    return ReadyOut(status="ready", detail="ready", database=database, migrations=migrations)


def _revisions(revisions: list[str]) -> str:
    return ", ".join(revisions) or "none"


def _reason(error: SQLAlchemyError) -> str:
    """The driver's own first line (``connection refused``), not SQLAlchemy's wrapping."""
    cause = getattr(error, "orig", None) or error
    lines = str(cause).strip().splitlines()
    return (lines[0] if lines else type(cause).__name__)[:MAX_REASON]


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: text_reply("text/plain; version=0.0.4", "Prometheus text format"),
        **errors(503),
    },
)
def metrics(server: ServerDep) -> Response:
    gauges = {}
    for app in server.store.apps():
        for service, loop in server.loops(app).items():
            if loop.knowledge.summaries:
                gauges[app.name, service] = dict(loop.knowledge.summaries[-1].signals)
    return Response(prometheus(server.counters, gauges), media_type="text/plain; version=0.0.4")
