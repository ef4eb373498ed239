"""The inspection commands against a server running on a background thread."""

from __future__ import annotations

from pathlib import Path

import httpx
from typer.testing import CliRunner

from harmonia.cli import app
from harmonia.server.background import BackgroundServer
from harmonia.store import Store, sqlite_url

POLICY = """
policy: p
system: traffic
models: [linear, lstm]
initial_model: lstm
window: 10 samples
strategy: switch
boundaries:
  - when: mean(error) > 0.5
    then: switch_model
"""


def test_apps_policies_and_actions_commands(tmp_path: Path) -> None:
    store = Store(sqlite_url(tmp_path))
    runner = CliRunner()
    with BackgroundServer(store, "admin") as url:
        headers = {"Authorization": "Bearer admin"}
        httpx.post(
            f"{url}/api/v1/apps",
            json={"name": "traffic", "owner": "team", "models": ["linear", "lstm"]},
            headers=headers,
        ).raise_for_status()
        httpx.put(
            f"{url}/api/v1/apps/traffic/policy", content=POLICY, headers=headers
        ).raise_for_status()
        samples = [{"model": "lstm", "ts": float(i), "metrics": {"error": 1.0}} for i in range(10)]
        httpx.post(
            f"{url}/api/v1/apps/traffic/telemetry", json={"samples": samples}, headers=headers
        )

        listed = runner.invoke(app, ["apps", "--server", url])
        assert listed.exit_code == 0 and "traffic" in listed.output and "team" in listed.output
        policy = runner.invoke(app, ["policies", "traffic", "--server", url])
        assert (
            policy.exit_code == 0
            and "# version 1" in policy.output
            and "mean(error) > 0.5" in policy.output
        )
        actions = runner.invoke(app, ["actions", "traffic", "--server", url])
        assert (
            actions.exit_code == 0
            and "switch_model" in actions.output
            and "delivered" in actions.output
        )
        missing = runner.invoke(app, ["policies", "nope", "--server", url])
        assert missing.exit_code == 2 and "no application named 'nope'" in missing.output
    unreachable = runner.invoke(app, ["apps", "--server", url])
    assert unreachable.exit_code == 2 and "cannot reach" in unreachable.output
    store.close()
