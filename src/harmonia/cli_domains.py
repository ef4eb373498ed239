"""``harmonia domains`` and ``harmonia keys``: organisations' domains and their API keys, on
a running server over HTTP (`docs/domains.md`).

Apart from `harmonia.cli` so that the command stays thin; it mounts these groups. Every
command takes ``--server`` and ``--token`` (the admin token, or a key with the scope the
command needs: ``HARMONIA_TOKEN``, else ``HARMONIA_ADMIN_TOKEN``).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

EXIT_INVALID = 2
#: ``domains check`` exits with this when the target does not answer
EXIT_UNREACHABLE = 1
Server = Annotated[str, typer.Option(help="the Harmonia server's URL")]
Token = Annotated[
    str,
    typer.Option(
        envvar=["HARMONIA_TOKEN", "HARMONIA_ADMIN_TOKEN"],
        help="the admin token, or a key with the scope the command needs",
    ),
]
DEFAULT_SERVER = "http://127.0.0.1:8000"
DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")
SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}

domains_app = typer.Typer(help="Organisations' domains and their deployment targets.")
keys_app = typer.Typer(help="API keys of a domain: create, list, rotate, revoke.")


def _console() -> Console:
    return Console(highlight=False, soft_wrap=True)


def stderr_console() -> Console:
    """The console for messages of commands whose stdout may carry data (manifests)."""
    return Console(stderr=True, highlight=False, soft_wrap=True)


def _wide_console() -> Console:
    """A console as wide as the terminal, or as ``COLUMNS`` says; piped output without
    ``COLUMNS`` gets 120 columns, which fit the placement tables, instead of 80."""
    fits = sys.stdout.isatty() or "COLUMNS" in os.environ
    return Console(highlight=False, width=None if fits else 120)


def _call(
    method: str,
    server: str,
    path: str,
    token: str,
    body: Any = None,
    *,
    anyone: bool = False,
    text: str | None = None,
    json_reply: bool = True,
    hints: Mapping[int, str] | None = None,
) -> Any:
    """The JSON reply of an API call (None for an empty one, or with ``json_reply`` off);
    one readable line and exit 2 on any failure, since a traceback tells a user nothing
    they can act on. ``anyone``: the route needs no token (one is sent if given). ``text``:
    a body sent as it is (a YAML document) instead of ``body`` as JSON. ``hints``: what to
    do, per refusal status, after the server's reason."""
    import httpx

    console = _console()
    if not token and not anyone:
        console.print("error: give --token, HARMONIA_TOKEN or HARMONIA_ADMIN_TOKEN", markup=False)
        raise typer.Exit(EXIT_INVALID)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        reply = httpx.request(
            method,
            f"{server.rstrip('/')}{path}",
            json=body if text is None else None,
            content=None if text is None else text.encode("utf-8"),
            headers=headers,
            timeout=30,
        )
    except httpx.HTTPError as error:
        console.print(f"error: cannot reach {server}: {_reason(error)}", markup=False)
        raise typer.Exit(EXIT_INVALID) from None
    if reply.status_code >= 400:
        hint = (hints or {}).get(reply.status_code)
        message = f"error: {reply.status_code}: {_detail(reply)}" + (f"; {hint}" if hint else "")
        console.print(message, markup=False)
        raise typer.Exit(EXIT_INVALID)
    if not reply.content or not json_reply:
        return None
    try:
        return reply.json()
    except ValueError:
        console.print(f"error: {server} answered, but not with JSON: is it Harmonia?", markup=False)
        raise typer.Exit(EXIT_INVALID) from None


def _reason(error: Exception) -> str:
    """Why a request failed, in words: ``Connection refused``, not a repr."""
    return str(error) or type(error).__name__


#: the most characters of a non-JSON error reply (an HTML page) shown
MAX_REPLY_TEXT = 200


def _detail(reply: Any) -> str:
    """An error reply's ``detail`` on one line: field errors as ``field: reason`` joined by
    ``; `` (never a Python list), anything else as its text."""
    try:
        detail = reply.json().get("detail")
    except (ValueError, AttributeError):
        return " ".join(str(reply.text).split())[:MAX_REPLY_TEXT] or reply.reason_phrase
    if isinstance(detail, list):
        return "; ".join(_one_line(_issue(item)) for item in detail)
    return _one_line(str(detail))


def _one_line(text: str) -> str:
    """``text`` with its line breaks and runs of spaces as single spaces (a YAML parser's
    message spans lines)."""
    return " ".join(text.split())


def _issue(item: Any) -> str:
    """One field error, ``field: reason`` (``reason`` alone for the body as a whole)."""
    if not isinstance(item, dict):
        return str(item)
    field, reason = item.get("field"), item.get("reason", item.get("msg", ""))
    return f"{field}: {reason}" if field else str(reason)


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def parse_duration(text: str) -> float:
    """Seconds in ``3600``, ``90s``, ``15m``, ``12h`` or ``30d``.

    >>> parse_duration("30d")
    2592000.0
    """
    match = DURATION.match(text.strip())
    if match is None:
        raise typer.BadParameter(f"{text!r}: a number of seconds, or with s, m, h or d")
    return float(match.group(1)) * SECONDS[match.group(2)]


# -- domains --------------------------------------------------------------------------------
@domains_app.command("add")
def domains_add(
    name: Annotated[str, typer.Argument(metavar="NAME", help="e.g. vendor, operator-production")],
    org: Annotated[str, typer.Option(help="the organisation that owns it")],
    context: Annotated[
        str | None, typer.Option(help="its Kubernetes context (the server's kubeconfig)")
    ] = None,
    namespace: Annotated[str | None, typer.Option(help="its Kubernetes namespace")] = None,
    create_org: Annotated[
        bool, typer.Option(help="create the organisation first if it does not exist")
    ] = False,
    server: Server = DEFAULT_SERVER,
    token: Token = "",
) -> None:
    """Add a domain to an organisation, with an optional deployment target (admin token)."""
    if create_org:
        known = {o["name"] for o in _call("GET", server, "/api/v1/orgs", token)}
        if org not in known:
            _call("POST", server, "/api/v1/orgs", token, {"name": org})
            typer.echo(f"organisation {org}: created")
    body: dict[str, Any] = {"name": name, "org": org}
    if context is not None or namespace is not None:
        body["target"] = {"context": context, "namespace": namespace or "default"}
    created = _call("POST", server, "/api/v1/domains", token, body)
    typer.echo(f"domain {created['name']} of {created['org']}: created")


@domains_app.command("list")
def domains_list(server: Server = DEFAULT_SERVER, token: Token = "") -> None:
    """The domains the token may see (all of them with the admin token)."""
    table = Table("domain", "organisation", "context", "namespace", "created")
    for item in _call("GET", server, "/api/v1/domains", token):
        target = item["target"] or {}
        table.add_row(
            item["name"],
            item["org"],
            target.get("context") or ("(current)" if target else "-"),
            target.get("namespace") or "-",
            _when(item["created"]),
        )
    _console().print(table)


@domains_app.command("check")
def domains_check(
    name: Annotated[str, typer.Argument(metavar="DOMAIN", help="the domain")],
    server: Server = DEFAULT_SERVER,
    token: Token = "",
) -> None:
    """Whether the domain's deployment target answers; exits 1 when it does not."""
    result = _call("GET", server, f"/api/v1/domains/{name}/check", token)
    verdict = "reachable" if result["reachable"] else "NOT reachable"
    typer.echo(f"domain {result['domain']}: {verdict}: {result['detail']}")
    if not result["reachable"]:
        raise typer.Exit(EXIT_UNREACHABLE)


# -- keys -----------------------------------------------------------------------------------
def _print_created(key: dict[str, Any]) -> None:
    typer.echo(f"key {key['id']} of {key['domain']}, scope {key['scope']}")
    if key["expires"] is not None:
        typer.echo(f"expires {_when(key['expires'])}")
    typer.echo(f"token (shown once): {key['token']}")


@keys_app.command("create")
def keys_create(
    domain: Annotated[str, typer.Argument(metavar="DOMAIN", help="the domain the key is for")],
    scope: Annotated[str, typer.Option(help="read, write or admin")] = "read",
    name: Annotated[str, typer.Option(help="a name to tell the key apart")] = "",
    expires_in: Annotated[
        str | None, typer.Option(help="lifetime: seconds, or 15m, 12h, 30d")
    ] = None,
    server: Server = DEFAULT_SERVER,
    token: Token = "",
) -> None:
    """Create a key of a domain and print its token (shown once)."""
    body: dict[str, Any] = {"scope": scope, "name": name}
    if expires_in is not None:
        body["expires_in_s"] = parse_duration(expires_in)
    _print_created(_call("POST", server, f"/api/v1/domains/{domain}/keys", token, body))


@keys_app.command("list")
def keys_list(
    domain: Annotated[str, typer.Argument(metavar="DOMAIN", help="the domain")],
    server: Server = DEFAULT_SERVER,
    token: Token = "",
) -> None:
    """The domain's keys (never their secrets), revoked ones included."""
    table = Table("scope", "name", "created", "by", "expires", "status")
    table.add_column("id", no_wrap=True)  # what revoke and rotate take: never wrapped
    for item in _call("GET", server, f"/api/v1/domains/{domain}/keys", token):
        status = "revoked" if item["revoked"] is not None else "active"
        table.add_row(
            item["scope"],
            item["name"] or "-",
            _when(item["created"]),
            item["created_by"],
            _when(item["expires"]),
            status,
            item["id"],
        )
    _console().print(table)


@keys_app.command("rotate")
def keys_rotate(
    domain: Annotated[str, typer.Argument(metavar="DOMAIN", help="the domain")],
    key_id: Annotated[str, typer.Argument(metavar="ID", help="the key's id")],
    server: Server = DEFAULT_SERVER,
    token: Token = "",
) -> None:
    """Give the key a new secret (same id and scope); its old token stops working."""
    path = f"/api/v1/domains/{domain}/keys/{key_id}/rotate"
    _print_created(_call("POST", server, path, token))


@keys_app.command("revoke")
def keys_revoke(
    domain: Annotated[str, typer.Argument(metavar="DOMAIN", help="the domain")],
    key_id: Annotated[str, typer.Argument(metavar="ID", help="the key's id")],
    server: Server = DEFAULT_SERVER,
    token: Token = "",
) -> None:
    """Revoke the key for good: it stops working at once."""
    revoked = _call("DELETE", server, f"/api/v1/domains/{domain}/keys/{key_id}", token)
    typer.echo(f"key {revoked['id']} of {revoked['domain']}: revoked")
