"""A domain's API keys: create (the token is in this reply only), list, rotate, revoke.
All for the domain's admins (a key with ``admin`` on it) and the admin token."""

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Path

from harmonia.server.api import API
from harmonia.server.api.deps import Caller, ServerDep
from harmonia.server.api.routes.domains import DomainPath
from harmonia.server.domain_schemas import KeyCreatedOut, KeyIn, KeyOut
from harmonia.server.openapi import errors
from harmonia.store import ApiKey

router = APIRouter(prefix=API)
KeyId = Annotated[str, Path(pattern=r"^[0-9a-f]{1,32}$", max_length=32)]


@router.post(
    "/domains/{domain}/keys",
    status_code=201,
    response_model=KeyCreatedOut,
    responses=errors(400, 401, 403, 404, 413, 422, 503),
)
def create_key(
    domain: DomainPath, body: KeyIn, server: ServerDep, caller: Caller
) -> dict[str, Any]:
    """A new key of the domain with ``scope`` (``read``, ``write`` or ``admin``), optionally
    expiring; its token is shown in this reply only (only its hash is stored)."""
    key, token = server.domains.create_key(
        caller, domain, body.scope, name=body.name, expires_in_s=body.expires_in_s
    )
    return {**key_view(key), "token": token}


@router.get(
    "/domains/{domain}/keys",
    response_model=list[KeyOut],
    responses=errors(401, 403, 404, 422, 503),
)
def keys(domain: DomainPath, server: ServerDep, caller: Caller) -> list[dict[str, Any]]:
    """The domain's keys, revoked ones included, oldest first: ids and scopes, no secret."""
    return [key_view(k) for k in server.domains.keys_of(caller, domain)]


@router.post(
    "/domains/{domain}/keys/{key_id}/rotate",
    response_model=KeyCreatedOut,
    responses=errors(401, 403, 404, 409, 422, 503),
)
def rotate_key(
    domain: DomainPath, key_id: KeyId, server: ServerDep, caller: Caller
) -> dict[str, Any]:
    """A new secret for the key (same id and scope); the old token stops working at once.
    The new token is shown in this reply only."""
    key, token = server.domains.rotate_key(caller, domain, key_id)
    return {**key_view(key), "token": token}


@router.delete(
    "/domains/{domain}/keys/{key_id}",
    response_model=KeyOut,
    responses=errors(401, 403, 404, 409, 422, 503),
)
def revoke_key(
    domain: DomainPath, key_id: KeyId, server: ServerDep, caller: Caller
) -> dict[str, Any]:
    """Revoke the key for good: it stops working at once, and stays listed as revoked."""
    return key_view(server.domains.revoke_key(caller, domain, key_id))


def key_view(key: ApiKey) -> dict[str, Any]:
    return asdict(key)
