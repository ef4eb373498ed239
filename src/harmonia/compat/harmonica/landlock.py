"""Linux Landlock through its three system calls (ctypes; no root needed): confine the
calling process, and whatever it executes, to writing beneath some folders, reading
beneath others, and (ABI 4+) making TCP connections and binds only on some ports.

Used by the sandbox launcher (`harmonia.compat.harmonica._jail`) just before it executes
the uploaded code; a restriction cannot be lifted afterwards, by the process or its children.
Where the kernel lacks Landlock, `abi_version` answers 0 and nothing is restricted: the
caller says so.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterable
from pathlib import Path

_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446  # the same on every architecture
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH, _RULE_NET_PORT = 1, 2
_PR_SET_NO_NEW_PRIVS = 38

EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
REMOVE_DIR, REMOVE_FILE, MAKE_CHAR, MAKE_DIR = 1 << 4, 1 << 5, 1 << 6, 1 << 7
MAKE_REG, MAKE_SOCK, MAKE_FIFO, MAKE_BLOCK, MAKE_SYM = 1 << 8, 1 << 9, 1 << 10, 1 << 11, 1 << 12
REFER, TRUNCATE, IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
BIND_TCP, CONNECT_TCP = 1 << 0, 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1

READ = EXECUTE | READ_FILE | READ_DIR
WRITE = (
    WRITE_FILE
    | REMOVE_DIR
    | REMOVE_FILE
    | MAKE_CHAR
    | MAKE_DIR
    | MAKE_REG
    | MAKE_SOCK
    | MAKE_FIFO
    | MAKE_BLOCK
    | MAKE_SYM
)
#: what a rule on a file (not a folder) may grant
_FILE_ACCESS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [
        ("allowed_access", ctypes.c_uint64),
        ("parent_fd", ctypes.c_int32),
    ]


class _NetPortAttr(ctypes.Structure):
    _fields_ = [
        ("allowed_access", ctypes.c_uint64),
        ("port", ctypes.c_uint64),
    ]


class LandlockError(OSError):
    """The kernel refused a Landlock call."""


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def abi_version() -> int:
    """The kernel's Landlock ABI (0: none, or disabled)."""
    try:
        version = int(_libc().syscall(_CREATE_RULESET, None, 0, _CREATE_RULESET_VERSION))
    except (AttributeError, OSError):
        return 0
    return max(version, 0)


def _check(result: int, what: str) -> int:
    if result < 0:
        errno = ctypes.get_errno()
        raise LandlockError(errno, f"landlock {what}: {os.strerror(errno)}")
    return result


def restrict(
    *,
    read: Iterable[Path],
    write: Iterable[Path],
    connect_ports: Iterable[int] = (),
    bind_ports: Iterable[int] = (),
) -> int:
    """Confine this process from now on; answers the ABI used (0: not confined).

    Reads and executes are allowed beneath ``read`` and ``write``, writes beneath
    ``write`` only; with ABI 4+, TCP connects only to ``connect_ports`` and binds only on
    ``bind_ports``; with ABI 6+, no signals to, nor abstract Unix sockets of, processes
    outside. Paths that do not exist are skipped.
    """
    abi = abi_version()
    if abi == 0:
        return 0
    libc = _libc()
    fs = READ | WRITE | (REFER if abi >= 2 else 0) | (TRUNCATE if abi >= 3 else 0)
    net = (BIND_TCP | CONNECT_TCP) if abi >= 4 else 0
    scoped = (SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL) if abi >= 6 else 0
    attr = _RulesetAttr(fs, net, scoped)
    size = ctypes.sizeof(_RulesetAttr) if abi >= 6 else 16 if abi >= 4 else 8
    ruleset = _check(libc.syscall(_CREATE_RULESET, ctypes.byref(attr), size, 0), "ruleset")
    try:
        grants = [(Path(p), READ) for p in read] + [(Path(p), fs) for p in write]
        for path, access in grants:
            _allow_path(libc, ruleset, path, access)
        if net:
            for port, access in [(p, CONNECT_TCP) for p in connect_ports] + [
                (p, BIND_TCP) for p in bind_ports
            ]:
                rule = _NetPortAttr(access, int(port))
                _check(
                    libc.syscall(_ADD_RULE, ruleset, _RULE_NET_PORT, ctypes.byref(rule), 0),
                    f"port {port}",
                )
        _check(libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
        _check(libc.syscall(_RESTRICT_SELF, ruleset, 0), "restrict_self")
    finally:
        os.close(ruleset)
    return abi


def _allow_path(libc: ctypes.CDLL, ruleset: int, path: Path, access: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return
    try:
        if not path.is_dir():
            access &= _FILE_ACCESS
        rule = _PathBeneathAttr(access, fd)
        _check(
            libc.syscall(_ADD_RULE, ruleset, _RULE_PATH_BENEATH, ctypes.byref(rule), 0),
            f"path {path}",
        )
    finally:
        os.close(fd)
