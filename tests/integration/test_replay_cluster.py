"""`harmonia replay SYSTEM --suite N --cluster ADDRESS`: a suite on a real Dask cluster.

The fixture starts a `distributed.LocalCluster` with two worker processes on loopback (a
scheduler and workers that talk over TCP, as on separate machines, sharing this machine's
filesystem), and the suite run on it must equal the one run in the local process pool.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from harmonia.cli import app
from harmonia.replay import cluster as cluster_module
from harmonia.replay.cluster import ClusterError, connect
from harmonia.replay.results import ApproachResult
from harmonia.replay.suite import SuiteResult, run_suite

distributed = pytest.importorskip(
    "distributed", reason="Dask distributed is not installed: pip install 'harmonia[cluster]'"
)

APPROACHES = ["single-linear", "single-svm", "single-linear+retrain", "harmonia"]
#: what a task measures with the clock, so no two runs share it
TIMINGS = ("seconds", "inference_ms")
#: a scheduler serves HTTP even without a dashboard, by default on 8787, which another
#: cluster (a parallel test) may hold: a port of the system's choosing instead
QUIET_HTTP = {"dashboard_address": "127.0.0.1:0"}


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    """The address of a local cluster: a scheduler and two single-threaded worker processes."""
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", **QUIET_HTTP
    ) as local:
        yield local.scheduler_address


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _without_timings(result: ApproachResult) -> dict[str, Any]:
    row = asdict(result)
    for key in TIMINGS:
        row.pop(key)
    return row


def _rows(result: SuiteResult) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (stream, row.approach): _without_timings(row)
        for stream, replay in result.replays.items()
        for row in replay.approaches
    }


def test_a_short_suite_on_a_local_cluster_equals_the_local_run(
    data_dir: Path, scheduler: str
) -> None:
    options: dict[str, Any] = {
        "approaches": APPROACHES,
        "seed": 5,
        "samples": 800,
        "data_dir": data_dir,
    }
    local = run_suite("traffic", 2, workers=2, **options)
    seen: list[tuple[int, int]] = []
    started = time.perf_counter()
    remote = run_suite(
        "traffic", 2, cluster=scheduler, progress=lambda _, n, t: seen.append((n, t)), **options
    )
    print(f"suite on the cluster: {time.perf_counter() - started:.1f} s")
    assert seen == [(n, 10) for n in range(1, 11)]  # 2 streams × (4 approaches + oracle)
    assert _rows(remote) == _rows(local)
    assert remote.standings == local.standings and remote.best_fixed == local.best_fixed
    assert remote.distribution == local.distribution and remote.streams == local.streams


def test_an_unreachable_scheduler_is_one_clear_error() -> None:
    address = f"tcp://127.0.0.1:{_free_port()}"
    started = time.perf_counter()
    with pytest.raises(ClusterError, match=f"no Dask scheduler answered at {address} within 1 s"):
        connect(address, timeout=1)
    assert time.perf_counter() - started < 15


def test_workers_that_do_not_see_the_data_are_refused(
    scheduler: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the check's file not written here: as if the workers had another folder at this path
    monkeypatch.setattr(cluster_module, "_mark", lambda folder: Path(folder) / "not-written")
    with pytest.raises(ClusterError, match=r"2 of the 2 workers .* do not see the data"):
        connect(scheduler, shared=[str(tmp_path)])


def test_the_data_check_leaves_nothing_behind(scheduler: str, tmp_path: Path) -> None:
    with connect(scheduler, shared=[str(tmp_path)]):
        pass
    assert list(tmp_path.iterdir()) == []


def test_without_distributed_it_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed: ImportError
    with pytest.raises(ClusterError, match=r"pip install 'harmonia\[cluster\]'"):
        connect("tcp://127.0.0.1:1")


def test_a_scheduler_without_workers_is_refused() -> None:
    with (
        distributed.LocalCluster(n_workers=0, processes=False, **QUIET_HTTP) as empty,
        pytest.raises(ClusterError, match="has no worker"),
    ):
        connect(empty.scheduler_address, timeout=0.5)


def test_workers_with_several_threads_get_a_warning(tmp_path: Path) -> None:
    notes: list[str] = []
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, **QUIET_HTTP
        ) as threaded,
        connect(threaded.scheduler_address, shared=[str(tmp_path)], notes=notes.append),
    ):
        pass
    assert len(notes) == 1 and "start workers with --nthreads 1" in notes[0]


def test_cli_runs_a_suite_on_the_cluster(data_dir: Path, scheduler: str, tmp_path: Path) -> None:
    command = ["replay", "traffic", "--suite", "1", "--seed", "7", "--samples", "600"]
    command += ["--approaches", "single-linear,harmonia", "--cluster", scheduler]
    command += ["--out", str(tmp_path)]
    env = {**os.environ, "HARMONIA_DATA_DIR": str(data_dir)}
    result = CliRunner().invoke(app, command, env=env)
    assert result.exit_code == 0, result.output
    suite = json.loads((tmp_path / "suite.json").read_text())
    assert set(suite["distribution"]) == {"single-linear", "harmonia", "oracle"}


def test_cli_reports_an_unreachable_cluster(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cluster_module, "CONNECT_TIMEOUT", 0.5)
    address = f"tcp://127.0.0.1:{_free_port()}"
    command = ["replay", "traffic", "--suite", "1", "--samples", "600", "--cluster", address]
    command += ["--approaches", "single-linear", "--out", str(tmp_path)]
    result = CliRunner().invoke(app, command, env={"HARMONIA_DATA_DIR": str(data_dir)})
    assert result.exit_code == 1, result.output
    assert f"error: no Dask scheduler answered at {address}" in result.output


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--workers", "2", "--suite", "1"], "--workers and --cluster exclude each other"),
        ([], "--cluster runs a suite's tasks: add --suite N"),
    ],
)
def test_cli_refuses_cluster_misuse(extra: list[str], message: str) -> None:
    command = ["replay", "traffic", "--cluster", "tcp://127.0.0.1:1", *extra]
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 2 and message in result.output
