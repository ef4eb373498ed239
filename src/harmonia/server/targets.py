"""URLs the server itself calls (effectors, Harmonica's tactic endpoints), kept to what an
operator means: http(s) only, and never a link-local or cloud-metadata address unless the
operator allows it (``HARMONIA_ALLOW_LINK_LOCAL_TARGETS``).

Without this, whoever may register an application or post a Harmonica policy could make the
server POST to ``http://169.254.169.254/...`` (cloud credentials) from inside the network.
The rule is checked when a URL is accepted and again when it is called, on the addresses the
name resolves to then (a name may resolve elsewhere later: DNS rebinding).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

#: names that cloud providers answer metadata on, whatever they resolve to
METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata", "instance-data"})


class TargetRefused(ValueError):
    """A URL the server will not call; the message says why."""


def check_url_shape(url: str) -> str:
    """``url`` if it is an absolute http(s) URL with a host; `TargetRefused` otherwise."""
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a port that is not a number in range
    except ValueError as error:
        raise TargetRefused(f"not a valid URL: {error}") from None
    if parts.scheme not in ("http", "https"):
        raise TargetRefused("must be an http:// or https:// URL")
    if not parts.hostname:
        raise TargetRefused("must name a host, as in http://host:port/path")
    if port == 0:
        raise TargetRefused("port 0 cannot be called")
    if "\x00" in url or any(c.isspace() for c in url):
        raise TargetRefused("must not contain spaces or control characters")
    return url


def forbidden_address(address: str) -> str | None:
    """Why ``address`` (an IP) may not be called, or None."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_link_local:
        return f"{address} is link-local (cloud metadata lives there)"
    if ip == ipaddress.ip_address("fd00:ec2::254"):
        return f"{address} is a cloud metadata address"
    if ip.is_unspecified or ip.is_multicast:
        return f"{address} cannot be called"
    return None


def check_target(url: str, *, allow_link_local: bool = False) -> str:
    """``url`` if the server may call it, judged on its text (no DNS lookup)."""
    check_url_shape(url)
    if allow_link_local:
        return url
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    if host in METADATA_HOSTS:
        raise TargetRefused(f"{host} is a cloud metadata host")
    reason = forbidden_address(host)
    if reason:
        raise TargetRefused(reason)
    return url


async def resolve_allowed(host: str, port: int, *, allow_link_local: bool = False) -> str:
    """An address of ``host`` the server may connect to (resolved now, checked now)."""
    if allow_link_local:
        return host
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as error:
        raise TargetRefused(f"cannot resolve {host}: {error}") from None
    for info in infos:
        address = str(info[4][0])
        reason = forbidden_address(address)
        if reason:
            raise TargetRefused(f"{host} resolves to {reason}")
    return str(infos[0][4][0])
