"""One live run per application: the server refuses to start a second run of an app whose
run is still going (409, naming that run), before it changes anything, so that two streams
never feed one loop and a refused Start never replaces the running policy."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from test_server_api import ADMIN, auth

from harmonia.server.app import create_app
from harmonia.server.runs import Runs
from harmonia.store import Store, sqlite_url

#: a run that stays up until stopped, without running a system (its arguments are ignored)
STAND_IN = (sys.executable, "-c", "import time; time.sleep(120)")


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setattr(Runs, "program", STAND_IN)
    store = Store(sqlite_url(tmp_path))
    with TestClient(create_app(store, ADMIN, data_dir=tmp_path)) as test_client:
        yield test_client  # leaving stops the runs still going
    store.close()


def start(client: TestClient, app: str, preset: str) -> tuple[int, dict[str, Any]]:
    """Press Start for ``app`` under ``preset``: the status code and the reply."""
    reply = client.post(
        "/api/v1/runs",
        json={"system": "traffic", "app": app, "preset": preset, "loop": True},
        headers=auth(ADMIN),
    )
    return reply.status_code, reply.json()


def test_a_second_run_of_a_running_app_is_refused_and_changes_nothing(
    client: TestClient,
) -> None:
    code, first = start(client, "busy", "traffic-live")
    assert code == 201, first
    policy = client.get("/api/v1/apps/busy/policy", headers=auth(ADMIN)).json()

    code, again = start(client, "busy", "traffic-switch")
    assert code == 409, again
    detail = str(again["detail"])
    assert f"run {first['id']}, started " in detail and f"stop run {first['id']} first" in detail
    # the preset the refused request named is not in force: the running one's policy is
    after = client.get("/api/v1/apps/busy/policy", headers=auth(ADMIN)).json()
    assert (after["version"], after["document"]["policy"]) == (policy["version"], "traffic-live")
    running = [r for r in client.get("/api/v1/runs").json() if r["status"] == "running"]
    assert [r["id"] for r in running] == [first["id"]]

    # another application may run alongside; once stopped, the first may run again
    assert start(client, "other", "traffic-live")[0] == 201
    stopped = client.delete(f"/api/v1/runs/{first['id']}", headers=auth(ADMIN))
    assert stopped.json()["status"] == "stopped"
    assert start(client, "busy", "traffic-switch")[0] == 201


def test_a_bad_rate_is_invalid_not_a_conflict(tmp_path: Path) -> None:
    """The runs' own checks name the field (422); 409 is kept for a run already going."""
    from harmonia.server.runs import RunBusy, RunError

    runs = Runs(tmp_path / "runs", tmp_path)
    with pytest.raises(RunError, match="rate") as raised:
        runs.start_system("traffic", "http://x", "app", "token", 0.0)
    assert not isinstance(raised.value, RunBusy)
