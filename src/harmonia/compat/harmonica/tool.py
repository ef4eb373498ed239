"""Harmonica's management routes, inside the Harmonica tool folder the operator names.

Harmonica's server writes ``approach.conf``, ``policies/<id>.json`` and the chosen model
into its own ``tool/`` folder, starts ``run_managed_system.py`` there, and builds
``managed_system_custom`` from uploaded MAPE files. Harmonia does the same only when the
operator configures that folder (``HARMONIA_HARMONICA_TOOL_DIR``); uploaded MAPE files are
taken, and a custom system started, only when ``HARMONIA_HARMONICA_CUSTOM_MAPE`` is on as
well, and that system then runs in `harmonia.compat.harmonica.sandbox`. Differences kept on
purpose: names are checked before they become paths, and stopping ends the managed system
this server started (its process group), not every Python process whose command line
looks like one.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harmonia.compat.harmonica.sandbox import Run, Sandbox, SandboxLimits
from harmonia.compat.harmonica.uploads import (
    MAPE_FILES,
    MAX_MAPE_BYTES,
    UploadRefused,
    ZipLimits,
    check_zip,
    extract_zip,
    replace_tree,
)

if TYPE_CHECKING:
    from harmonia.settings import Settings

#: Harmonica's dashboard names approaches by preset; its wrapper reads the short form
APPROACHES = {
    "reg_harmone_score": "reg_harmone",
    "reg_switch_r2": "reg_switch",
    "reg_single": "reg_single",
    "cv_harmone_score": "cv_harmone",
    "cv_switch_conf": "cv_switch",
    "cv_single": "cv_single",
}
BASE_SYSTEMS = {
    "regression": ("managed_system_regression", "custom_regression"),
    "cv": ("managed_system_cv", "custom_cv"),
}
CUSTOM = "managed_system_custom"
NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
WRAPPER = "run_managed_system.py"
#: where Harmonica's wrapper listens for tactics (its adaptor API)
TACTIC_PORT = 8080
TOOL_DIR_SETTING = "HARMONIA_HARMONICA_TOOL_DIR"
CUSTOM_MAPE_SETTING = "HARMONIA_HARMONICA_CUSTOM_MAPE"
CHECK_EVERY_S = 30.0


@dataclass(frozen=True)
class HarmonicaOptions:
    """How Harmonica's routes behave (from `harmonia.settings.Settings`)."""

    #: Harmonica's ``tool/`` folder; None: the management routes answer that they are off
    tool_dir: Path | None = None
    #: the Python that runs Harmonica's wrapper (its virtual environment's)
    python: str = "python3"
    #: take uploaded MAPE files and run a custom system (sandboxed)
    custom_mape: bool = False
    #: how often secondary boundaries are checked against the latest message (Harmonica: 30)
    check_every_s: float = CHECK_EVERY_S
    #: the server's address, the only one a sandboxed system may connect to
    server: tuple[str, int] = ("127.0.0.1", 5000)
    #: limits of a sandboxed custom system
    limits: SandboxLimits = field(
        default_factory=lambda: SandboxLimits(
            cpu_s=6 * 3600, memory_bytes=8 * 1024**3, wall_s=6 * 3600.0
        )
    )
    max_upload_bytes: int = 512 * 1024**2
    zip_limits: ZipLimits = field(default_factory=ZipLimits)

    @classmethod
    def from_settings(cls, settings: Settings) -> HarmonicaOptions:
        return cls(
            tool_dir=settings.harmonica_tool_dir,
            python=settings.harmonica_python,
            custom_mape=settings.harmonica_custom_mape,
            server=(settings.host, settings.port),
        )


class ToolOff(Exception):
    """A management route while the tool folder (or custom MAPE) is not configured."""


class ToolError(ValueError):
    """A request the tool folder cannot serve as asked; the message says why (400)."""


def checked_name(value: Any, what: str) -> str:
    """``value`` if it is a safe file name (no path, no leading dot), else `ToolError`."""
    if not isinstance(value, str) or not NAME.match(value):
        raise ToolError(f"{what} must be 1-128 letters, digits, '_', '-' or '.', got {value!r}")
    return value


class HarmonicaTool:
    """The tool folder and the managed system started in it (at most one at a time)."""

    def __init__(self, options: HarmonicaOptions) -> None:
        self.options = options
        self._run: Run | subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    @property
    def folder(self) -> Path:
        if self.options.tool_dir is None:
            raise ToolOff(
                "Harmonica's management routes are off: set "
                f"{TOOL_DIR_SETTING} to Harmonica's tool/ folder to turn them on"
            )
        return self.options.tool_dir

    def require_custom(self) -> Path:
        folder = self.folder
        if not self.options.custom_mape:
            raise ToolOff(
                "running uploaded MAPE files is off: set "
                f"{CUSTOM_MAPE_SETTING}=true (they then run sandboxed), or install the "
                "logic as a strategy plugin (docs/harmonica.md)"
            )
        return folder

    # -- files ------------------------------------------------------------------------------
    def write_approach(self, approach: Any) -> str:
        """Stop the managed system and write ``approach.conf`` (Harmonica's short form)."""
        value = APPROACHES.get(approach, approach) if isinstance(approach, str) else approach
        written = checked_name(value, "approach")
        folder = self.folder
        self.stop()
        (folder / "approach.conf").write_text(written)
        return written

    def save_policy(self, document: dict[str, Any]) -> Path:
        policy_id = checked_name(str(document.get("policy_id", "")), "policy_id")
        folder = self.folder / "policies"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{policy_id}.json"
        path.write_text(json.dumps(document, indent=2))
        return path

    def set_model(self, model: Any, system: Any) -> Path:
        name = checked_name(model, "model")
        base = "managed_system_regression" if system == "regression" else "managed_system_cv"
        path = self.folder / base / "knowledge" / "model.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(name)
        return path

    # -- the managed system -----------------------------------------------------------------
    def running(self) -> bool:
        with self._lock:
            return self._alive()

    def _alive(self) -> bool:
        run = self._run
        if run is None:
            return False
        return run.running() if isinstance(run, Run) else run.poll() is None

    def start(self) -> str:
        """Start Harmonica's wrapper in the tool folder; a custom approach in the sandbox."""
        folder = self.folder
        approach_file = folder / "approach.conf"
        approach = approach_file.read_text().strip() if approach_file.exists() else ""
        custom = approach.lower().startswith("custom_")
        if custom:
            self.require_custom()
        with self._lock:
            if self._alive():
                return "Managed system already running"
            log = (folder / "managed_system.log").open("ab")
            try:
                argv = [self.options.python, "-u", WRAPPER]
                if custom:
                    self._run = self._sandbox(folder).start(argv, cwd=folder, log=log)
                else:
                    self._run = subprocess.Popen(
                        argv,
                        cwd=folder,
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
            finally:
                log.close()
        return "Managed system started (sandboxed)" if custom else "Managed system started"

    def _sandbox(self, folder: Path) -> Sandbox:
        host, port = self.options.server
        connect = {("localhost", port)}  # Harmonica's wrapper calls localhost:5000
        if host not in ("", "0.0.0.0", "::"):
            connect.add((host, port))
        return Sandbox(
            workdir=folder / CUSTOM,
            limits=self.options.limits,
            connect=tuple(sorted(connect)),
            bind_ports=(TACTIC_PORT,),
            read=(folder,),
        )

    def stop(self) -> bool:
        """Stop the managed system this server started; answers whether one ran."""
        with self._lock:
            run, self._run = self._run, None
        if run is None:
            return False
        if isinstance(run, Run):
            run.stop()
        else:
            Run(run, None).stop()
        return True

    # -- custom MAPE --------------------------------------------------------------------------
    def build_custom(
        self,
        base_system: Any,
        files: list[tuple[str, bytes]],
        dataset: tuple[str, bytes] | None,
    ) -> tuple[int, str]:
        """Harmonica's custom system: the base system copied to ``managed_system_custom``,
        its MAPE files replaced by the uploaded ones, the dataset put where the base system
        reads it, ``approach.conf`` set. Everything is checked before anything is written."""
        folder = self.require_custom()
        if not base_system:
            raise ToolError("Base system not specified")
        if base_system not in BASE_SYSTEMS:
            raise ToolError("Invalid base system")
        source, approach = BASE_SYSTEMS[base_system]
        mape = [(name, data) for name, data in files if name in MAPE_FILES]
        if not files:
            raise ToolError("No MAPE files uploaded")
        for name, data in mape:
            if len(data) > MAX_MAPE_BYTES:
                raise UploadRefused(f"{name} is over {MAX_MAPE_BYTES} bytes")
        if dataset is not None and base_system == "cv":
            check_zip(dataset[1], self.options.zip_limits)
        if not (folder / source).is_dir():
            raise ToolError(f"the tool folder has no {source}/ to build on")
        self.stop()
        target = folder / CUSTOM
        replace_tree(folder / source, target)
        logic = target / "mape_logic"
        logic.mkdir(exist_ok=True)
        for name, data in mape:
            (logic / name).write_bytes(data)
        (folder / "approach.conf").write_text(approach)
        if dataset is not None:
            self._put_dataset(target, base_system, dataset[1])
        return len(mape), approach

    def _put_dataset(self, target: Path, base_system: str, data: bytes) -> None:
        if base_system == "regression":
            knowledge = target / "knowledge"
            knowledge.mkdir(parents=True, exist_ok=True)
            (knowledge / "dataset.csv").write_bytes(data)
            return
        images = target / "data" / "bdd100k" / "images" / "test"
        if images.exists():
            shutil.rmtree(images)
        images.mkdir(parents=True)
        extract_zip(data, images, self.options.zip_limits)
