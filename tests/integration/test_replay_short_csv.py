"""A user's own CSV shorter than one decision window replays, and says that nothing could be
decided rather than leaving the user to wonder why every approach ties."""

from __future__ import annotations

import os
from pathlib import Path

from typer.testing import CliRunner

from harmonia.cli import app
from harmonia.systems.traffic.data import TEST, load_flow, shipped


def test_a_csv_shorter_than_one_window_is_warned_about(data_dir: Path, tmp_path: Path) -> None:
    mine = tmp_path / "mine.csv"
    mine.write_text("flow\n" + "\n".join(str(v) for v in load_flow(shipped(TEST))[:100]))
    result = CliRunner().invoke(
        app,
        ["replay", "traffic", "--data", str(mine), "--approaches", "single-linear",
         "--workers", "1", "--out", str(tmp_path / "out")],
        env={**os.environ, "HARMONIA_DATA_DIR": str(data_dir), "COLUMNS": "200"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "warning: the stream has 95 samples, fewer than one decision window (200)" in text
    assert "no approach can decide anything" in text
