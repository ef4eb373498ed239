"""What a new user meets in the first hour, without a server: help texts and the replay
table at 80 columns, the demo's looping traffic stream, and the demo saying what stops."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

from harmonia.cli import app
from harmonia.cli_demo import demo_run_request, follow, still_running
from harmonia.replay.lab import LabRun, short_stream_warning
from harmonia.replay.plots import drift_shading
from harmonia.replay.results import ActionRecord, ApproachResult, ReplayResult, Timeline
from harmonia.server.runs import Runs
from harmonia.systems.live import looped, played

NARROW = {"COLUMNS": "80"}


def _help(*command: str) -> str:
    result = CliRunner().invoke(app, [*command, "--help"], env=NARROW)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize(
    "command",
    [(), ("deploy", "apply"), ("policy", "validate"), ("models", "push"), ("run",), ("demo",)],
)
def test_help_shows_no_type_for_flags_and_fits_80_columns(command: tuple[str, ...]) -> None:
    text = _help(*command)
    assert "<bool>" not in text
    assert all(len(line) <= 80 for line in text.splitlines()), text


def test_help_texts_are_not_read_as_markup() -> None:
    validate = _help("policy", "validate")
    assert "``" not in validate and "Print ok for each valid policy" in validate
    assert "{files}" not in validate and "FILE..." in validate
    # square brackets in a help text stay (rich markup would swallow "[domain/]")
    assert "[domain/]name@version" in _help("models", "push")


def _row(name: str) -> ApproachResult:
    return ApproachResult(name, 1.2e-4, {"r2": 0.91, "mae": 13.9}, 0.05, 1, 2, 0, "estimate", 0.8)


NAMES = [
    "harmone",
    "switch",
    "switch+retrain",
    *(f"single-{m}{tail}" for tail in ("", "+retrain") for m in ("linear", "svm", "lstm")),
    "harmonia",
    "oracle",
]


def test_the_replay_table_fits_80_columns_and_names_every_approach_in_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = ReplayResult(
        "traffic", "harmonia", 0, "short.csv", 300, [], 200, list(map(_row, NAMES))
    )

    def fake_lab(*_: Any, **__: Any) -> LabRun:
        return LabRun(result, [])

    monkeypatch.setattr("harmonia.replay.lab.run_lab", fake_lab)
    done = CliRunner().invoke(
        app, ["replay", "traffic", "--samples", "300", "--out", str(tmp_path)], env=NARROW
    )
    assert done.exit_code == 0, done.output
    lines = done.output.splitlines()
    assert all(len(line) <= 80 for line in lines), done.output
    for name in NAMES:  # whole, each on its own row: the six single-… rows differ
        assert any(re.search(rf"│ {re.escape(name)} +│", line) for line in lines), name
    for header in ("mJ/inf", "R²", "MAE", "ms/inf", "sw/rt/ru"):
        assert header in done.output
    assert "1/2/0" in done.output and "switches/retrains/reuses" in done.output


# -- a stream shorter than one window ----------------------------------------------------------
def test_a_stream_shorter_than_one_window_is_warned_about() -> None:
    assert short_stream_warning(200, 200) is None
    warning = short_stream_warning(95, 200)
    assert warning is not None and "95 samples" in warning and "(200)" in warning
    assert "no approach can decide anything" in warning


def test_a_users_csv_without_known_drift_shades_where_a_detector_fired() -> None:
    fired = ActionRecord(599, "retrain", "svm", 2, "kl 0.9", "drift.kl > 0.6")
    switched = ActionRecord(799, "switch_model", "lstm", 1, "low", "quality < 0.8")
    row = _row("harmonia")
    row.timeline = Timeline(actions=[fired, switched])
    result = ReplayResult("traffic", "harmonia", 0, "mine.csv", 1000, [], 200, [row])
    shading = drift_shading(result)
    assert shading.regions == [(400, 600)] and shading.label == "drift detected"
    known = ReplayResult(
        "traffic", "harmonia", 0, "shipped", 1000, [], 200, [row], drift_regions=[(10, 20)]
    )
    assert drift_shading(known).regions == [(10, 20)] and drift_shading(known).label == "drift"


# -- the demo's traffic source loops ------------------------------------------------------------
def test_the_looping_stream_starts_again_at_its_end() -> None:
    assert list(looped([1, 2, 3], loop=True, limit=8)) == [1, 2, 3, 1, 2, 3, 1, 2]
    assert list(looped([1, 2, 3], loop=False)) == [1, 2, 3]
    assert list(looped([], loop=True, limit=5)) == []


def test_a_retrain_past_the_end_learns_from_what_was_seen_last() -> None:
    series = np.arange(10.0)  # lag windows of 5: 5 forecasts a pass
    assert played(series, 3, offset=5).tolist() == list(range(8))
    assert played(series, 5, offset=5).tolist() == list(range(10))
    # two forecasts into the second pass: the rest of the first, then the second so far
    assert played(series, 7, offset=5).tolist() == [7, 8, 9, 0, 1, 2, 3, 4, 5, 6]
    assert played(series, 10, offset=5).tolist() == list(range(10))


def test_the_demo_asks_for_a_looping_run_and_the_server_passes_it_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert demo_run_request(200.0)["loop"] is True
    runs = Runs(tmp_path / "runs", tmp_path)
    started: list[list[str]] = []
    monkeypatch.setattr(
        runs, "_start", lambda _kind, _system, _app, command, *_: started.append(command)
    )
    runs.start_system("traffic", "http://x", "traffic-live", "token", 200.0, loop=True)
    runs.start_system("traffic", "http://x", "other", "token", 200.0)
    assert "--loop" in started[0] and "--loop" not in started[1]


# -- the demo says when anything stops ---------------------------------------------------------
def _client(runs: list[dict[str, Any]], actions: list[dict[str, Any]]) -> httpx.Client:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/runs":
            return httpx.Response(200, json=runs)
        return httpx.Response(200, json=actions)

    return httpx.Client(base_url="http://demo", transport=httpx.MockTransport(answer))


def _console() -> Console:
    return Console(record=True, width=200, file=io.StringIO())


def test_the_demo_says_when_the_traffic_system_stops() -> None:
    ended = {"id": 1, "status": "failed", "exit_code": 1, "log_tail": "Traceback\nBoom"}
    console = _console()
    assert not still_running(console, _client([ended], []), 1)
    text = console.export_text()
    assert "the traffic system stopped: failed (exit code 1)" in text and "Boom" in text
    assert "stay up" in text
    running = {**ended, "status": "running"}
    assert still_running(_console(), _client([running], []), 1)


def test_the_demo_prints_adaptations_and_stops_when_the_server_stops_answering(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("harmonia.cli_demo.POLL_S", 0.0)
    action = {
        "id": 7,
        "kind": "switch_model",
        "model": "svm",
        "version": 1,
        "reason": "cheaper",
        "trigger": "score",
    }
    calls = {"n": 0}

    def answer(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] > 3:
            raise httpx.ConnectError("refused", request=request)
        if request.url.path == "/api/v1/runs":
            return httpx.Response(200, json=[{"id": 1, "status": "running"}])
        return httpx.Response(200, json=[action])

    console = _console()
    client = httpx.Client(base_url="http://demo", transport=httpx.MockTransport(answer))
    assert follow(console, client, 1) == "the server stopped answering"
    text = console.export_text()
    assert text.count("switch_model svm v1: cheaper") == 1  # printed once, not each poll
    assert "the server does not answer" in text
