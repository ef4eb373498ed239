"""Loaded by Python at start-up inside Harmonia's sandbox (its folder is put first on
``PYTHONPATH``): sockets may only reach the addresses in ``HARMONIA_SANDBOX_CONNECT``
(``host:port`` list: the Harmonia server) and bind only the ports in
``HARMONIA_SANDBOX_BIND``; no other kind of socket (UDP, Unix, raw) may be made.

A guard at Python's level, beside the kernel's (Landlock's TCP port rules, or no network
namespace at all): code that goes around Python's ``socket`` module (ctypes, a C extension,
another interpreter started with ``-S``) is not stopped by this file.

It acts only where the sandbox asked for it (``HARMONIA_SANDBOX_GUARD=1``): imported anywhere
else (a test collector walking the source tree, say), it changes nothing.
"""

from __future__ import annotations

import os
import socket
from typing import Any

_allowed: set[tuple[str, int]] = set()
for _item in filter(None, os.environ.get("HARMONIA_SANDBOX_CONNECT", "").split(",")):
    _host, _, _port = _item.rpartition(":")
    _allowed.add((_host.strip("[]"), int(_port)))
    for _info in socket.getaddrinfo(_host.strip("[]"), int(_port), proto=socket.IPPROTO_TCP):
        _allowed.add((str(_info[4][0]), int(_port)))
_bind_ports = {int(p) for p in os.environ.get("HARMONIA_SANDBOX_BIND", "").split(",") if p}
_NET = (socket.AF_INET, socket.AF_INET6)


class SandboxNetworkError(PermissionError):
    """What the guard raises: the address is not the server's."""


_original_init = socket.socket.__init__
_original_connect = socket.socket.connect
_original_connect_ex = socket.socket.connect_ex
_original_bind = socket.socket.bind


def _init(self: socket.socket, family: Any = -1, type: Any = -1, *args: Any, **kwargs: Any) -> None:
    _original_init(self, family, type, *args, **kwargs)
    if self.family not in _NET or (int(self.type) & 0xF) != socket.SOCK_STREAM:
        self.close()
        raise SandboxNetworkError(f"sandbox: no {self.family.name}/{self.type.name} sockets")


def _check_connect(address: Any) -> None:
    """An address allowed as given (an IP address, or the very name allowed): no other
    name is resolved here, so that a name cannot leave through a DNS query either."""
    host, port = str(address[0]), int(address[1])
    if (host, port) not in _allowed:
        raise SandboxNetworkError(f"sandbox: connecting to {address!r} is not allowed")


def _connect(self: socket.socket, address: Any) -> None:
    _check_connect(address)
    _original_connect(self, address)


def _connect_ex(self: socket.socket, address: Any) -> int:
    _check_connect(address)
    return int(_original_connect_ex(self, address))


def _bind(self: socket.socket, address: Any) -> None:
    if int(address[1]) not in _bind_ports:
        raise SandboxNetworkError(f"sandbox: binding {address!r} is not allowed")
    _original_bind(self, address)


if os.environ.get("HARMONIA_SANDBOX_GUARD") == "1":
    socket.socket.__init__ = _init  # type: ignore[method-assign]
    socket.socket.connect = _connect  # type: ignore[method-assign,assignment]
    socket.socket.connect_ex = _connect_ex  # type: ignore[method-assign,assignment]
    socket.socket.bind = _bind  # type: ignore[method-assign,assignment]
