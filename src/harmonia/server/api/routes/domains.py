"""Organisations and their domains: create and list them, and check whether a domain's
deployment target answers. Creating needs the admin token; a domain's keys see their domain."""

from typing import Annotated, Any

from fastapi import APIRouter, Path

from harmonia.server.api import API
from harmonia.server.api.deps import Caller, ServerDep
from harmonia.server.domain_schemas import DomainCheckOut, DomainIn, DomainOut, OrgIn, OrgOut
from harmonia.server.fields import APP_NAME_PATTERN
from harmonia.server.openapi import errors
from harmonia.store import Domain, Org

router = APIRouter(prefix=API)
#: a domain named in a path: the names' rule, so that a bad one is a 422 naming it
DomainPath = Annotated[str, Path(pattern=APP_NAME_PATTERN, max_length=64)]


@router.post(
    "/orgs",
    status_code=201,
    response_model=OrgOut,
    responses=errors(400, 401, 403, 409, 413, 422, 503),
)
def create_org(body: OrgIn, server: ServerDep, caller: Caller) -> dict[str, Any]:
    """An organisation (a vendor, an operator); the admin token only."""
    return org_view(server.domains.create_org(caller, body.name))


@router.get("/orgs", response_model=list[OrgOut], responses=errors(401, 422, 503))
def orgs(server: ServerDep, caller: Caller) -> list[dict[str, Any]]:
    """Every organisation for the admin; for a key, its domain's."""
    return [org_view(o) for o in server.domains.orgs(caller)]


@router.post(
    "/domains",
    status_code=201,
    response_model=DomainOut,
    responses=errors(400, 401, 403, 404, 409, 413, 422, 503),
)
def create_domain(body: DomainIn, server: ServerDep, caller: Caller) -> dict[str, Any]:
    """A domain of an existing organisation, with an optional deployment target (a
    Kubernetes context and namespace); the admin token only."""
    target = body.target
    return domain_view(
        server.domains.create_domain(
            caller,
            body.name,
            body.org,
            kube_context=None if target is None else target.context,
            namespace=None if target is None else target.namespace,
        )
    )


@router.get("/domains", response_model=list[DomainOut], responses=errors(401, 422, 503))
def domains(server: ServerDep, caller: Caller) -> list[dict[str, Any]]:
    """Every domain for the admin; for a key, its own."""
    return [domain_view(d) for d in server.domains.domains(caller)]


@router.get(
    "/domains/{domain}/check",
    response_model=DomainCheckOut,
    responses=errors(401, 403, 404, 422, 503),
)
def check(domain: DomainPath, server: ServerDep, caller: Caller) -> dict[str, Any]:
    """Whether the domain's deployment target answers (its API server, then its
    namespace), in seconds at most; ``reachable`` false with ``detail`` saying why when no
    cluster is configured, it does not answer, or the domain has no target (``read``)."""
    found, result = server.domains.check(caller, domain)
    return {
        "domain": found.name,
        "target": target_view(found),
        "reachable": result.reachable,
        "context": result.context,
        "detail": result.detail,
    }


def org_view(org: Org) -> dict[str, Any]:
    return {"name": org.name, "created": org.created}


def target_view(domain: Domain) -> dict[str, Any] | None:
    if domain.kube_context is None and domain.namespace is None:
        return None
    return {"context": domain.kube_context, "namespace": domain.namespace or "default"}


def domain_view(domain: Domain) -> dict[str, Any]:
    return {
        "name": domain.name,
        "org": domain.org,
        "target": target_view(domain),
        "created": domain.created,
    }
