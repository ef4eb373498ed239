"""The example of docs/byom.md runs as the page says: registered and given its policy with the
CLI, the scikit-learn service reports through the sdk and carries out what the server
decides when its data drifts."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import httpx
from typer.testing import CliRunner

from harmonia.cli import app
from harmonia.server.background import BackgroundServer
from harmonia.store import Store, sqlite_url

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "byom"
ADMIN = "admin"


def _service() -> ModuleType:
    """``examples/byom/service.py``, imported as a module (it is not in a package)."""
    spec = importlib.util.spec_from_file_location("byom_service", EXAMPLE / "service.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_the_byom_example_adapts_when_its_data_drifts(tmp_path: Path) -> None:
    service = _service()
    store = Store(sqlite_url(tmp_path))
    runner = CliRunner()
    try:
        with BackgroundServer(store, ADMIN, data_dir=tmp_path) as url:
            registered = runner.invoke(
                app, ["apps", "register", str(EXAMPLE / "app.yaml"), "--server", url],
                env={"HARMONIA_ADMIN_TOKEN": ADMIN},
            )  # fmt: skip
            assert registered.exit_code == 0, registered.output
            token = re.search(r"token \(shown once\): (\S+)", registered.output)
            assert token is not None
            put = runner.invoke(
                app, ["policy", "put", "byom", str(EXAMPLE / "policy.yaml"), "--server", url],
                env={"HARMONIA_APP_TOKEN": token[1]},
            )  # fmt: skip
            assert put.exit_code == 0 and "policy of byom/predict: version 1" in put.output

            done = service.main(url, token[1], samples=400, rate=400.0)

            actions = httpx.get(f"{url}/api/v1/apps/byom/actions").json()
            models = httpx.get(f"{url}/api/v1/apps/byom/models").json()
    finally:
        store.close()
    applied = [(a["kind"], a["model"]) for a in actions if a["status"] == "applied"]
    assert ("switch_model", "large") in applied, actions
    assert "switch_model large" in done.applied
    assert done.served_by["small"] >= 200  # before the drift, the cheap variant served
    # the versions it numbered itself, described with their training data's fingerprint
    versions = {(m["model"], v["version"]) for m in models for v in m["versions"]}
    assert {("small", 1), ("large", 1)} <= versions
    if any(kind == "retrain" for kind, _ in applied):
        assert ("large", 2) in versions and any(a.startswith("retrain") for a in done.applied)
