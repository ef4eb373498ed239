"""The sandbox that runs uploaded MAPE code: it may write only in its folder, reach only the
server's port, and it runs within its limits (CPU, memory, file size, wall time)."""

from __future__ import annotations

import socket
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from harmonia.compat.harmonica import landlock
from harmonia.compat.harmonica.sandbox import Sandbox, SandboxLimits

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or landlock.abi_version() < 4,
    reason="needs Linux with Landlock ABI 4+ (TCP port rules)",
)


@pytest.fixture
def listeners() -> Iterator[tuple[int, int]]:
    """Two ports listening on loopback: the 'server' and something else."""
    sockets = []
    for _ in range(2):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen()
        sockets.append(s)
    yield sockets[0].getsockname()[1], sockets[1].getsockname()[1]
    for s in sockets:
        s.close()


PROBE = textwrap.dedent(
    """
    import socket, sys
    def attempt(what, action):
        try:
            action()
            print(what, "ok")
        except OSError as error:
            print(what, "refused", type(error).__name__)
    attempt("server", lambda: socket.create_connection(("127.0.0.1", int(sys.argv[1])), 2))
    attempt("other", lambda: socket.create_connection(("127.0.0.1", int(sys.argv[2])), 2))
    udp = lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("::1", 53))
    attempt("udp", udp)
    attempt("inside", lambda: open("mine.txt", "w").write("x"))
    attempt("outside", lambda: open(sys.argv[3], "w").write("x"))
    attempt("read_secret", lambda: open(sys.argv[4]).read())
    """
)


def _probe(tmp_path: Path, sandbox: Sandbox, ports: tuple[int, int], *flags: str) -> dict[str, str]:
    (sandbox.workdir / "probe.py").write_text(PROBE)
    secret = tmp_path / "data" / "harmonia.db"
    secret.parent.mkdir(exist_ok=True)
    secret.write_text("tokens")
    argv = [sys.executable, *flags, "probe.py", str(ports[0]), str(ports[1])]
    done = sandbox.run([*argv, str(tmp_path / "outside.txt"), str(secret)])
    assert done.returncode == 0, done.output
    return dict(line.split(" ", 1) for line in done.output.splitlines()[1:])


def test_the_sandbox_reaches_only_the_server_and_writes_only_its_folder(
    tmp_path: Path, listeners: tuple[int, int]
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    sandbox = Sandbox(work, connect=(("127.0.0.1", listeners[0]),))
    seen = _probe(tmp_path, sandbox, listeners)
    assert seen["server"] == "ok"
    assert seen["other"].startswith("refused")
    assert seen["udp"].startswith("refused")
    assert seen["inside"] == "ok" and (work / "mine.txt").exists()
    assert seen["outside"] == "refused PermissionError"
    assert not (tmp_path / "outside.txt").exists()
    assert seen["read_secret"] == "refused PermissionError"


def test_the_kernel_refuses_too_when_python_s_guard_is_bypassed(
    tmp_path: Path, listeners: tuple[int, int]
) -> None:
    """``-S`` skips the sitecustomize guard: Landlock's port rule still refuses the other
    port, and the folder rule still refuses the write."""
    work = tmp_path / "work"
    work.mkdir()
    sandbox = Sandbox(work, connect=(("127.0.0.1", listeners[0]),))
    seen = _probe(tmp_path, sandbox, listeners, "-S")
    assert seen["server"] == "ok"
    assert seen["other"] == "refused PermissionError"
    assert seen["outside"] == "refused PermissionError"


def test_without_a_server_there_is_no_network_at_all(
    tmp_path: Path, listeners: tuple[int, int]
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    seen = _probe(tmp_path, Sandbox(work), listeners, "-S")
    assert seen["server"].startswith("refused")
    assert seen["other"].startswith("refused")


def test_limits_hold(tmp_path: Path) -> None:
    limits = SandboxLimits(memory_bytes=512 * 1024**2, file_bytes=1024 * 1024, wall_s=30)
    sandbox = Sandbox(tmp_path / "work", limits=limits)
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "hog.py").write_text(
        textwrap.dedent(
            """
            try:
                block = bytearray(2 * 1024**3)
                print("memory ok")
            except MemoryError:
                print("memory refused")
            try:
                open("big", "wb").write(b"x" * (2 * 1024 * 1024))
                print("file ok")
            except OSError:
                print("file refused")
            """
        )
    )
    done = sandbox.run([sys.executable, "hog.py"])
    assert "memory refused" in done.output and "file refused" in done.output, done.output


def test_the_wall_time_kills_the_whole_run(tmp_path: Path) -> None:
    sandbox = Sandbox(tmp_path / "work", limits=SandboxLimits(wall_s=1.0))
    (tmp_path / "work").mkdir()
    done = sandbox.run([sys.executable, "-c", "import time; time.sleep(30)"])
    assert done.timed_out and done.returncode != 0


def test_the_server_s_environment_does_not_leak(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HARMONIA_ADMIN_TOKEN", "s3cret")
    sandbox = Sandbox(tmp_path / "work")
    (tmp_path / "work").mkdir()
    done = sandbox.run([sys.executable, "-c", "import os; print(sorted(os.environ))"])
    assert "HARMONIA_ADMIN_TOKEN" not in done.output and "s3cret" not in done.output
