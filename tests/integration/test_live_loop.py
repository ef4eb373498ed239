"""The demo's live traffic system does not run dry: played with ``--loop`` (as the demo's run
is), a stream far shorter than the run keeps being sent past its end."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import httpx
from typer.testing import CliRunner

from harmonia.cli import app
from harmonia.policies import presets
from harmonia.server.background import BackgroundServer
from harmonia.store import Store, sqlite_url
from harmonia.systems.traffic.data import LOOKBACK, TEST, load_flow, shipped

ADMIN = "admin"
ROWS = 60  # 55 forecasts a pass
SERVED = 300  # more than five passes


def test_a_looping_run_keeps_sending_past_the_end_of_its_data(
    data_dir: Path, tmp_path: Path
) -> None:
    short = tmp_path / "short.csv"
    with short.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["flow"])
        writer.writerows([[v] for v in load_flow(shipped(TEST))[:ROWS]])
    live = tmp_path / "live"  # retrains go to a copy of the session's trained models
    shutil.copytree(data_dir / "registry", live / "registry")
    store = Store(sqlite_url(tmp_path / "server"))
    try:
        with BackgroundServer(store, ADMIN, data_dir=tmp_path / "server") as url:
            admin = {"Authorization": f"Bearer {ADMIN}"}
            registered = httpx.post(
                f"{url}/api/v1/apps",
                json={"name": "traffic", "owner": "tests", "models": ["linear", "svm", "lstm"]},
                headers=admin,
            )
            registered.raise_for_status()
            token = registered.json()["token"]
            httpx.put(
                f"{url}/api/v1/apps/traffic/policy",
                content=presets()["traffic-live"],
                headers=admin,
            ).raise_for_status()
            done = CliRunner().invoke(
                app,
                ["run", "traffic", "--server", url, "--token", token, "--data", str(short),
                 "--loop", "--samples", str(SERVED)],
                env={"HARMONIA_DATA_DIR": str(live)},
            )  # fmt: skip
            assert done.exit_code == 0, done.output
            assert f"served {SERVED} observations" in done.output
            exported = httpx.get(f"{url}/api/v1/apps/traffic/telemetry.csv", headers=admin)
            exported.raise_for_status()
            rows = list(csv.DictReader(exported.text.splitlines()))
    finally:
        store.close()
    assert len(rows) == SERVED > ROWS - LOOKBACK  # every sample past the data's end arrived
    # the same observations came round again, in order
    targets = [float(r["target"]) for r in rows]
    per_pass = ROWS - LOOKBACK
    assert targets[per_pass : 2 * per_pass] == targets[:per_pass]


def test_without_loop_the_run_ends_with_its_data(data_dir: Path, tmp_path: Path) -> None:
    """`--samples` cuts a run short; without `--loop` it cannot go past the data's end."""
    short = tmp_path / "short.csv"
    short.write_text("flow\n" + "\n".join(str(v) for v in load_flow(shipped(TEST))[:ROWS]))
    live = tmp_path / "live"
    shutil.copytree(data_dir / "registry", live / "registry")
    store = Store(sqlite_url(tmp_path / "server"))
    try:
        with BackgroundServer(store, ADMIN, data_dir=tmp_path / "server") as url:
            registered = httpx.post(
                f"{url}/api/v1/apps",
                json={"name": "traffic", "owner": "tests", "models": ["linear", "svm", "lstm"]},
                headers={"Authorization": f"Bearer {ADMIN}"},
            )
            token = registered.json()["token"]
            done = CliRunner().invoke(
                app,
                ["run", "traffic", "--server", url, "--token", token, "--data", str(short),
                 "--samples", str(SERVED)],
                env={"HARMONIA_DATA_DIR": str(live)},
            )  # fmt: skip
    finally:
        store.close()
    assert done.exit_code == 0, done.output
    assert f"served {ROWS - LOOKBACK} observations" in done.output
