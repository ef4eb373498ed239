"""A sandbox for code uploaded to the server (Harmonica's custom MAPE files): a separate
process, never the server's, confined as far as this machine allows without root.

What it guarantees, where the kernel has Landlock (Linux 5.13+; TCP rules 6.7+):

- writes (create, change, remove) only beneath its working folder; reads only beneath that
  folder, the Python installation and system folders (``/usr``, ``/etc``, ``/proc``...),
  and the folders the caller adds: not the server's data folder;
- TCP connections only to the allowed ports, binds only on the allowed ports; with no
  allowed address at all, and ``unshare`` able to make a network namespace, no network
  whatsoever (UDP and DNS included);
- resource limits (setrlimit): CPU seconds, address space, file size, open files,
  processes; and a wall-time limit after which its whole process group is killed;
- an environment of its own: none of the server's variables (tokens, database URL).

What it does not: with Landlock's TCP rules a port is allowed on every host (the Python
guard, `netguard/sitecustomize.py`, narrows that to the server's address, for code that
uses Python's ``socket``), UDP is not confined unless the network namespace is used, the
process limit is not enforced for root, and the code runs as the server's user. Without
Landlock the launcher says so in the run's log (and refuses to run if ``require_landlock``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import IO

JAIL = Path(__file__).with_name("_jail.py")
NETGUARD = Path(__file__).with_name("netguard")
SYSTEM_READ = ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc", "/proc", "/sys")
DEVICES = ("/dev/null", "/dev/zero", "/dev/urandom", "/dev/random")


@dataclass(frozen=True)
class SandboxLimits:
    """What one sandboxed run may use; None: the server's own limit."""

    cpu_s: int | None = 600
    memory_bytes: int | None = 4 * 1024**3
    file_bytes: int | None = 256 * 1024**2
    open_files: int | None = 256
    processes: int | None = 64
    #: seconds before the whole run is killed (None: no wall-time limit)
    wall_s: float | None = 3600.0


@dataclass(frozen=True)
class Sandbox:
    """Where and how sandboxed commands run.

    ``connect`` lists ``(host, port)`` the code may reach (the Harmonia server); empty: no
    network. ``bind_ports`` are ports it may listen on (the managed system's tactic
    endpoint). ``read`` adds folders it may read beyond the system's and Python's.
    """

    workdir: Path
    limits: SandboxLimits = field(default_factory=SandboxLimits)
    connect: tuple[tuple[str, int], ...] = ()
    bind_ports: tuple[int, ...] = ()
    read: tuple[Path, ...] = ()
    require_landlock: bool = False

    def command(self, argv: Sequence[str], *, cwd: Path | None = None) -> list[str]:
        """The launcher's command line that runs ``argv`` confined."""
        workdir = self.workdir.resolve()
        (workdir / ".tmp").mkdir(parents=True, exist_ok=True)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(workdir),
            "TMPDIR": str(workdir / ".tmp"),
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": str(NETGUARD),
            "HARMONIA_SANDBOX_GUARD": "1",
            "HARMONIA_SANDBOX_CONNECT": ",".join(f"{h}:{p}" for h, p in self.connect),
            "HARMONIA_SANDBOX_BIND": ",".join(str(p) for p in self.bind_ports),
        }
        config = {
            "cwd": str((cwd or workdir).resolve()),
            "read": [*SYSTEM_READ, *_python_paths(argv[0]), *map(str, self.read), str(NETGUARD)],
            "write": [str(workdir), *DEVICES],
            "connect_ports": sorted({p for _, p in self.connect}),
            "bind_ports": list(self.bind_ports),
            "limits": {k: v for k, v in asdict(self.limits).items() if k != "wall_s"},
            "require_landlock": self.require_landlock,
            "env": env,
        }
        launcher = [sys.executable, "-s", str(JAIL), json.dumps(config), "--", *argv]
        if not self.connect and _network_namespaces():
            return ["unshare", "--map-root-user", "--net", *launcher]
        return launcher

    def start(self, argv: Sequence[str], *, cwd: Path | None = None, log: IO[bytes]) -> Run:
        """Start ``argv`` confined, its output to ``log``; the run is killed at its wall
        time."""
        process = subprocess.Popen(
            self.command(argv, cwd=cwd),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped whole
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        )
        return Run(process, self.limits.wall_s)

    def run(self, argv: Sequence[str], *, cwd: Path | None = None) -> Finished:
        """Run ``argv`` confined to completion (or its wall time)."""
        log_path = self.workdir / ".sandbox.log"
        self.workdir.mkdir(parents=True, exist_ok=True)
        with log_path.open("wb") as log:
            run = self.start(argv, cwd=cwd, log=log)
            code = run.wait()
        return Finished(code, run.timed_out, log_path.read_text(errors="replace"))


@dataclass(frozen=True)
class Finished:
    returncode: int
    timed_out: bool
    output: str


class Run:
    """A started sandboxed process group, killed whole when stopped or out of time."""

    def __init__(self, process: subprocess.Popen[bytes], wall_s: float | None) -> None:
        self.process = process
        self.timed_out = False
        self._timer = threading.Timer(wall_s, self._expire) if wall_s else None
        if self._timer is not None:
            self._timer.daemon = True
            self._timer.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def _expire(self) -> None:
        self.timed_out = True
        self.stop(grace_s=0)

    def wait(self) -> int:
        code = self.process.wait()
        if self._timer is not None:
            self._timer.cancel()
        return code

    def stop(self, grace_s: float = 5.0) -> int:
        """SIGINT to the group (Harmonica's wrapper cleans up on it), then SIGKILL."""
        if self._timer is not None:
            self._timer.cancel()
        for sig, wait in ((signal.SIGINT, grace_s), (signal.SIGKILL, 5.0)):
            if self.process.poll() is not None:
                break
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(wait)
            except subprocess.TimeoutExpired:
                continue
        return self.process.wait()


def _python_paths(program: str) -> list[str]:
    """Folders the interpreter running ``program`` needs to read: this Python's, and a
    virtual environment's named on the command line."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sysconfig.get_paths()["stdlib"]}
    found = shutil.which(program)
    if found:
        here = Path(found)
        paths.update({str(here.parent.parent), str(here.resolve().parent.parent)})
    return sorted(paths)


@cache
def _network_namespaces() -> bool:
    """Whether ``unshare`` can give a process a network namespace of its own (root, or
    unprivileged user namespaces)."""
    if shutil.which("unshare") is None:
        return False
    try:
        done = subprocess.run(
            ["unshare", "--map-root-user", "--net", "true"], capture_output=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0
