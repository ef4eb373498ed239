"""What each install needs: the base install (the sdk) runs without the server's stack or
torch, and the server without the reference systems'. Checked by running the code in a fresh
interpreter that refuses to import what the install would not have (`test_wheel.py` installs
the wheel bare into a fresh venv)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BLOCKER = """
import importlib.abc, sys
class Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"not installed: {{name}}", name=name.split(".")[0])
sys.meta_path.insert(0, Absent())
"""
SERVER_ONLY = {"fastapi", "starlette", "uvicorn", "sqlalchemy", "alembic", "psycopg", "pyarrow"}
SHARED_EXTRAS = {"scipy", "river", "yaml", "typer", "rich", "plotly", "pydantic_settings"}
SYSTEMS_ONLY = {"torch", "sklearn", "matplotlib"}


def _run_without(blocked: set[str], code: str) -> subprocess.CompletedProcess[str]:
    script = BLOCKER.format(blocked=sorted(blocked)) + textwrap.dedent(code)
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT
    )


def test_the_sdk_runs_on_the_base_install() -> None:
    done = _run_without(
        SERVER_ONLY | SHARED_EXTRAS | SYSTEMS_ONLY,
        """
        from harmonia.sdk import HTTPTransport, InMemoryTransport, Probe
        HTTPTransport("http://127.0.0.1:1", "token").close()
        reply = lambda app, instance, samples: {"accepted": len(samples), "actions": []}
        with Probe("app", InMemoryTransport(reply)) as probe:
            with probe.measure("model", version=1) as sample:
                sample.prediction = 1.0
        print(probe.stats.sent)
        """,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"


def test_the_server_runs_without_the_lab() -> None:
    done = _run_without(
        SYSTEMS_ONLY,
        """
        from harmonia.policies import build_engine, parse_policy_text, presets
        from harmonia.server.app import _freeze_what_lives_long
        import harmonia.cli
        _freeze_what_lives_long()  # imports every strategy and drift detector
        for name, text in presets().items():
            build_engine(parse_policy_text(text, name))
        print("ok")
        """,
    )
    assert done.returncode == 0, done.stderr


def test_the_command_names_the_extra_it_needs() -> None:
    done = _run_without({"typer"}, "from harmonia._command import main\nmain()")
    assert done.returncode == 1
    assert "pip install 'harmonia[server]'" in done.stderr


def test_the_base_dependencies_leave_the_heavy_stack_out() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = {d.split("[")[0].split(">")[0].split("=")[0].strip() for d in project["dependencies"]}
    assert base == {"pydantic", "numpy", "httpx", "orjson"}
    assert "torch==2.13.0" in project["optional-dependencies"]["systems"]
