"""What the routes depend on: the service layer (`Server`) and the dashboard's run registry
of the app serving the request, and who the request's token says the caller is.

Writes need a token: the admin token, the application's own for its telemetry, policy and
action results, or a domain's API key with the scope the route needs on the app's domain
(``Authorization: Bearer <token>``). `Caller` resolves the admin token or a key into a
`Principal` with its scopes per domain, for the routes of domains, keys and what belongs to a
domain (`docs/domains.md`).
"""

from typing import Annotated

from fastapi import Depends, Header, Request

from harmonia.server.errors import Unauthorized
from harmonia.server.principals import Principal
from harmonia.server.runs import Runs
from harmonia.server.service import Server
from harmonia.store import App, same_secret


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header; None without one."""
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return None


def _server(request: Request) -> Server:
    server: Server = request.app.state.server
    return server


async def get_server(request: Request) -> Server:
    # async, as every dependency here: no thread-pool hop for what is an attribute lookup
    return _server(request)


async def get_runs(request: Request) -> Runs:
    runs: Runs = request.app.state.runs
    return runs


def admin(request: Request, authorization: Annotated[str | None, Header()] = None) -> None:
    """Refuses any request without the admin token."""
    token = bearer_token(authorization)
    if token is None or not same_secret(token, _server(request).admin_token):
        raise Unauthorized("this needs the admin token: Authorization: Bearer <token>")


async def app_or_admin(
    name: str, request: Request, authorization: Annotated[str | None, Header()] = None
) -> App:
    """The app ``name``, if the token is its own or the admin's."""
    # async: no thread-pool hop for a check that is a dictionary lookup once cached
    return _server(request).authorize(name, bearer_token(authorization))


async def app_reader(
    name: str, request: Request, authorization: Annotated[str | None, Header()] = None
) -> App:
    """The app ``name``, for a read that needs a token: the app's own, the admin's, or a key
    with ``read`` on the app's domain."""
    return _server(request).authorize(name, bearer_token(authorization), "read")


async def caller(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> Principal:
    """Who the token says the caller is: the admin, or a domain's key (`Unauthorized`
    otherwise); routes then ask `Principal.require(domain, scope)`."""
    # async: a dictionary lookup once the key is cached
    return _server(request).domains.principal(bearer_token(authorization))


async def known_app(name: str, request: Request) -> App:
    """The registered app ``name`` (404 if there is none)."""
    return _server(request).app(name)


ServerDep = Annotated[Server, Depends(get_server)]
RunsDep = Annotated[Runs, Depends(get_runs)]
AppAuth = Annotated[App, Depends(app_or_admin)]
AppRead = Annotated[App, Depends(app_reader)]
Caller = Annotated[Principal, Depends(caller)]
KnownApp = Annotated[App, Depends(known_app)]
Admin = Depends(admin)


def clamp_limit(limit: int) -> int:
    """A ``limit`` query parameter brought within [1, 1000]."""
    return min(max(limit, 1), 1000)
