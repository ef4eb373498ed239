"""The sandbox launcher: ``python .../_jail.py CONFIG -- ARGV...``.

A fresh, single-threaded process (the server never forks itself with a ``preexec_fn``):
it sets the resource limits, confines itself with Landlock, moves to the working folder
and executes ``ARGV``, which inherits every restriction. ``CONFIG`` is JSON written by
`harmonia.compat.harmonica.sandbox.Sandbox`. It prints one line to stderr saying what
was applied, so a run's log shows what it was confined by.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import sys
from pathlib import Path
from typing import Any

if __package__:
    from harmonia.compat.harmonica import landlock
else:  # run as a file: starting a sandbox need not import Harmonia (and numpy)
    import landlock  # type: ignore[no-redef]

_LIMITS = {
    "cpu_s": resource.RLIMIT_CPU,
    "memory_bytes": resource.RLIMIT_AS,
    "file_bytes": resource.RLIMIT_FSIZE,
    "open_files": resource.RLIMIT_NOFILE,
    "processes": resource.RLIMIT_NPROC,
}


def _set_limits(limits: dict[str, int]) -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    for name, kind in _LIMITS.items():
        value = limits.get(name)
        if value is None:
            continue
        _, hard = resource.getrlimit(kind)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        # the CPU limit's soft value sends SIGXCPU, the hard one a second later SIGKILL
        ceiling = value + 1 if kind == resource.RLIMIT_CPU else value
        if hard != resource.RLIM_INFINITY:
            ceiling = min(ceiling, hard)
        resource.setrlimit(kind, (value, ceiling))


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: _jail CONFIG -- ARGV...", file=sys.stderr)
        return 2
    config: dict[str, Any] = json.loads(argv[0])
    command = argv[2:]
    _set_limits(config.get("limits", {}))
    abi = landlock.restrict(
        read=[Path(p) for p in config.get("read", [])],
        write=[Path(p) for p in config.get("write", [])],
        connect_ports=config.get("connect_ports", []),
        bind_ports=config.get("bind_ports", []),
    )
    if abi == 0 and config.get("require_landlock"):
        print("sandbox: this kernel has no Landlock; refusing to run", file=sys.stderr)
        return 126
    confined = f"landlock ABI {abi}" if abi else "no landlock: files and TCP ports NOT confined"
    print(f"sandbox: {confined}; limits {config.get('limits', {})}", file=sys.stderr, flush=True)
    os.chdir(config["cwd"])
    env = config.get("env", {})
    program = shutil.which(command[0], path=env.get("PATH")) or command[0]
    os.execve(program, command, env)
    return 127  # not reached: execve replaces this process or raises


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
