"""The package as users get it: a wheel built from the tree, installed bare (no extras) into
a fresh virtualenv, whose `harmonia.sdk` reports to a running server. Slow: it builds and
installs (the base dependencies come from the package index or pip's cache)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from test_server_api import ADMIN, auth

from harmonia.server.background import BackgroundServer
from harmonia.store import Store, sqlite_url

ROOT = Path(__file__).resolve().parents[2]
#: what the base install must not bring: the server's stack, the lab, the solvers
HEAVY = ["torch", "sklearn", "fastapi", "uvicorn", "sqlalchemy", "alembic", "psycopg", "pyarrow"]
HEAVY += ["matplotlib", "plotly", "scipy"]


def _run(*command: str | Path, cwd: Path = ROOT) -> str:
    done = subprocess.run(
        [str(part) for part in command], cwd=cwd, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"{command}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.mark.slow
def test_a_bare_wheel_install_reports_to_a_server(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    _run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", dist, ROOT)
    [wheel] = dist.glob("harmonia-*.whl")
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv)
    python = venv / "bin" / "python"
    _run(python, "-m", "pip", "install", "--quiet", wheel)

    store = Store(sqlite_url(tmp_path / "data"))
    with BackgroundServer(store, ADMIN, data_dir=tmp_path / "data") as url:
        import httpx

        body = {"name": "bare", "owner": "sdk-user", "models": ["tiny"]}
        token = httpx.post(f"{url}/api/v1/apps", json=body, headers=auth(ADMIN)).json()["token"]
        script = textwrap.dedent(
            f"""
            import importlib.util, json
            from harmonia.sdk import HTTPTransport, Probe, new_trace_id
            heavy = [m for m in {HEAVY!r} if importlib.util.find_spec(m) is not None]
            with Probe("bare", HTTPTransport({url!r}, {token!r}), service="edge") as probe:
                for i in range(25):
                    with probe.measure("tiny", version=1, trace_id=new_trace_id()) as sample:
                        sample.prediction = float(i)
            print(json.dumps({{"heavy": heavy, "sent": probe.stats.sent}}))
            """
        )
        report = _run(python, "-c", script, cwd=tmp_path)
        assert '"heavy": []' in report and '"sent": 25' in report, report
        app = store.app("bare")
        assert store.count_telemetry(app) == 25
        rows = list(store.telemetry(app))
        assert {r["service"] for r in rows} == {"default"}  # a one-service app: any name
        assert len({r["trace_id"] for r in rows}) == 25
    store.close()
