"""``harmonia domains`` and ``harmonia keys`` against a server on a background thread."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harmonia.cli import app
from harmonia.server.background import BackgroundServer
from harmonia.store import Store, sqlite_url


def test_domains_and_keys_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("HARMONIA_TOKEN", raising=False)
    store = Store(sqlite_url(tmp_path))
    runner = CliRunner()
    try:
        with BackgroundServer(store, "admin") as url:
            common = ["--server", url, "--token", "admin"]

            def harmonia(*args: str, token: str = "admin") -> tuple[int, str]:
                result = runner.invoke(app, [*args, "--server", url, "--token", token])
                return result.exit_code, result.output

            code, out = harmonia(
                "domains", "add", "vendor", "--org", "acme", "--create-org",
                "--context", "kind-vendor", "--namespace", "ml",
            )  # fmt: skip
            assert code == 0 and "domain vendor of acme: created" in out, out
            code, out = harmonia("domains", "list")
            assert code == 0 and "vendor" in out and "kind-vendor" in out and "ml" in out
            code, out = harmonia("domains", "check", "vendor")
            assert code == 1 and "NOT reachable" in out and "no cluster" in out, out

            code, out = harmonia(
                "keys", "create", "vendor", "--scope", "admin", "--expires-in", "1d"
            )
            assert code == 0 and "scope admin" in out and "expires" in out, out
            manager = re.search(r"token \(shown once\): (\S+)", out)
            assert manager is not None
            code, out = harmonia("keys", "create", "vendor", "--scope", "read", token=manager[1])
            assert code == 0, out
            reader_id = re.search(r"key (\w+) of vendor", out)
            assert reader_id is not None
            code, out = harmonia("keys", "list", "vendor", token=manager[1])
            assert code == 0 and reader_id[1] in out and "active" in out
            code, out = harmonia("keys", "revoke", "vendor", reader_id[1], token=manager[1])
            assert code == 0 and "revoked" in out
            code, out = harmonia("keys", "create", "vendor", "--scope", "admin", token="wrong")
            assert code == 2 and "401" in out
            assert runner.invoke(app, ["keys", "list", "vendor", *common]).exit_code == 0
    finally:
        store.close()
