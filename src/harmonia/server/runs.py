"""Processes the server starts for the dashboard: reference systems run live, and replay-lab
experiments. Each is an ordinary `harmonia` command in its own process, so it uses the
public sdk or library exactly as a user's would and can be stopped without harming the server.

Only built-in commands are started, with arguments checked against fixed choices: nothing a
request sends is run as code or reaches a shell.
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from harmonia.systems import reference_system, system_names

RunKind = Literal["system", "experiment"]
Status = Literal["running", "finished", "failed", "stopped"]
#: the systems a live run or an experiment may name (those registered under
#: ``harmonia.systems``), with their models
SYSTEMS: dict[str, list[str]] = {
    name: list(reference_system(name).models) for name in system_names()
}
SAFE = re.compile(r"^[a-z0-9][a-z0-9_+,.-]{0,200}$")
LOG_TAIL_BYTES = 4000


@dataclass
class Run:
    """One process started from the dashboard, and what became of it."""

    id: int
    kind: RunKind
    system: str
    app: str | None
    command: list[str]
    log: Path
    out: Path | None = None
    started: float = field(default_factory=time.time)
    ended: float | None = None
    status: Status = "running"
    exit_code: int | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def view(self) -> dict[str, object]:
        tail = ""
        if self.log.exists():
            with self.log.open("rb") as handle:
                handle.seek(max(0, self.log.stat().st_size - LOG_TAIL_BYTES))
                tail = handle.read().decode("utf-8", errors="replace")
        return {
            "id": self.id,
            "kind": self.kind,
            "system": self.system,
            "app": self.app,
            "status": self.status,
            "started": self.started,
            "ended": self.ended,
            "exit_code": self.exit_code,
            "out": None if self.out is None else self.out.name,
            "log_tail": tail,
        }


class Runs:
    """The processes started through the API, kept while the server lives."""

    #: what a run's arguments follow: the ``harmonia`` command of this interpreter (a test
    #: puts a stand-in here, to have a run that stays up without running a system)
    program: tuple[str, ...] = (sys.executable, "-m", "harmonia.cli")

    def __init__(
        self, root: Path, data_dir: Path, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.root = root
        self.data_dir = data_dir
        self.clock = clock
        self._runs: dict[int, Run] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        # held from the busy check of a live run to its entry in ``_runs``: two requests for
        # one app at once must not both find it idle and both start
        self._starting = threading.Lock()

    def running(self, app: str) -> Run | None:
        """The live run of ``app`` still going, if any: one app is fed by one run at a time
        (two would interleave their telemetry in one loop and each obey the other's
        actions)."""
        return next(
            (
                r
                for r in self.all()
                if r.kind == "system" and r.app == app and r.status == "running"
            ),
            None,
        )

    def start_system(
        self,
        system: str,
        server: str,
        app: str,
        token: str,
        rate: float | None,
        loop: bool = False,
    ) -> Run:
        """Run a reference system live against ``server`` as application ``app``; with
        ``loop`` its data plays round and round until the run is stopped. `RunError` names
        a bad argument, `RunBusy` the run ``app`` already has going."""
        _check(system in SYSTEMS, f"system must be one of {', '.join(SYSTEMS)}")
        _check(SAFE.match(app) is not None, "app: use lowercase letters, digits, '-' or '_'")
        command = ["run", system, "--server", server, "--app", app]
        if rate is not None:
            _check(0 < rate <= 100_000, "rate must be in (0, 100000] observations per second")
            command += ["--rate", str(rate)]
        if loop:
            command.append("--loop")
        with self._starting:
            busy = self.running(app)
            if busy is not None:
                raise RunBusy(busy)
            return self._start("system", system, app, command, {"HARMONIA_APP_TOKEN": token})

    def start_experiment(
        self, system: str, approaches: Sequence[str], limit: int | None, experiments: Path
    ) -> Run:
        """Run the replay lab; its result files land in a new folder under ``experiments``."""
        _check(system in SYSTEMS, f"system must be one of {', '.join(SYSTEMS)}")
        names = ",".join(approaches) or "all"
        _check(SAFE.match(names) is not None, "approaches: names separated by commas")
        out = experiments / f"{system}-{time.strftime('%Y%m%d-%H%M%S')}-{next(self._ids)}"
        command = ["replay", system, "--approaches", names, "--out", str(out)]
        if limit is not None:
            _check(100 <= limit <= 1_000_000, "limit must be 100 to 1000000 samples")
            command += ["--samples", str(limit)]  # the replay command calls it --samples
        return self._start("experiment", system, None, command, {}, out)

    def stop(self, run_id: int) -> Run:
        run = self.get(run_id)
        if run.status == "running" and run.process is not None:
            run.process.send_signal(signal.SIGTERM)
            try:
                run.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                run.process.kill()
                run.process.wait()
            self._settle(run, stopped=True)
        return run

    def get(self, run_id: int) -> Run:
        with self._lock:
            run = self._runs.get(run_id)
        if run is None:
            raise LookupError(f"no run {run_id}")
        self._settle(run)
        return run

    def all(self) -> list[Run]:
        with self._lock:
            runs = list(self._runs.values())
        for run in runs:
            self._settle(run)
        return runs

    def close(self) -> None:
        """Stop whatever still runs (the server is going away)."""
        for run in self.all():
            if run.status == "running":
                self.stop(run.id)

    def _start(
        self,
        kind: RunKind,
        system: str,
        app: str | None,
        command: list[str],
        env: dict[str, str],
        out: Path | None = None,
    ) -> Run:
        run_id = next(self._ids)
        self.root.mkdir(parents=True, exist_ok=True)
        log = self.root / f"run-{run_id}.log"
        full = [*self.program, *command]
        with log.open("wb") as handle:
            process = subprocess.Popen(
                full,
                stdout=handle,
                stderr=subprocess.STDOUT,
                # the children keep their models in the server's data directory
                env={
                    **os.environ,
                    **env,
                    "HARMONIA_DATA_DIR": str(self.data_dir),
                    "COLUMNS": "120",
                },
                start_new_session=True,
            )
        run = Run(run_id, kind, system, app, full, log, out, self.clock(), process=process)
        with self._lock:
            self._runs[run_id] = run
        return run

    def _settle(self, run: Run, stopped: bool = False) -> None:
        if run.status != "running" or run.process is None:
            return
        code = run.process.poll()
        if code is None:
            return
        run.exit_code = code
        run.ended = self.clock()
        run.status = "stopped" if stopped else ("finished" if code == 0 else "failed")


class RunError(ValueError):
    """A run request that names something not allowed."""


class RunBusy(RunError):
    """A live run asked for an application that already has one going: the message names
    that run and when it started, so that the user can stop it first."""

    def __init__(self, run: Run) -> None:
        started = time.strftime("%H:%M:%S UTC", time.gmtime(run.started))
        super().__init__(
            f"{run.app!r} is already running: run {run.id}, started {started}; "
            f"stop run {run.id} first"
        )
        self.run = run


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise RunError(message)
