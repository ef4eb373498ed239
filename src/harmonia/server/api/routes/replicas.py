"""The replicas over one database and the leases they hold (`harmonia.server.leases`): which
replica owns each live loop and each app's contract checks, for an operator asking where a
loop runs, and whether the replica that answered holds it."""

from typing import Any

from fastapi import APIRouter

from harmonia.server.api import API
from harmonia.server.api.deps import Caller, ServerDep
from harmonia.server.openapi import errors
from harmonia.server.schemas import ReplicasOut

router = APIRouter(prefix=API)

#: what a single server answers (SQLite, or PostgreSQL with leases off)
SINGLE = (
    "a single server: it runs every live loop and every contract check itself and holds no "
    "lease (replicas need PostgreSQL and HARMONIA_LEASE_SECONDS > 0)"
)


@router.get("/replicas", response_model=ReplicasOut, responses=errors(401, 403, 422, 503))
def replicas(server: ServerDep, caller: Caller) -> dict[str, Any]:
    """Every replica seen lately or holding a lease, with its leases (app, service, fencing
    token, expiry on the database's clock) and whether the replica answering holds each.

    The admin token sees every lease; a domain key (any scope: ``read`` is enough) sees the
    leases of its domains' apps only (the replicas themselves are listed for any caller: an
    id and when it was seen). A single server answers ``replicas: false`` and no items."""
    keeper = server.replicas
    if keeper is None:
        return {"replicas": False, "this": None, "detail": SINGLE, "items": []}
    view = keeper.view()
    domains = caller.domains_with("read")
    if domains is not None:
        visible = {app.name for app in server.store.apps() if app.domain in domains}
        for item in view["items"]:
            item["leases"] = [lease for lease in item["leases"] if lease["app"] in visible]
    return view
