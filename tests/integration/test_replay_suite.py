"""`harmonia replay traffic --suite N`: approaches over generated streams, as a distribution."""

from __future__ import annotations

import json
import os
from pathlib import Path

from typer.testing import CliRunner

from harmonia.cli import app

APPROACHES = "single-linear,single-svm,single-linear+retrain,harmonia"


def test_cli_suite_reports_per_stream_and_distribution(data_dir: Path, tmp_path: Path) -> None:
    env = {**os.environ, "HARMONIA_DATA_DIR": str(data_dir)}
    command = ["replay", "traffic", "--suite", "2", "--seed", "5", "--samples", "800"]
    command += ["--approaches", APPROACHES, "--workers", "1", "--out", str(tmp_path)]
    result = CliRunner().invoke(app, command, env=env)
    assert result.exit_code == 0, result.output
    assert "dominated" in result.output and "traffic-50001" in result.output
    suite = json.loads((tmp_path / "suite.json").read_text())
    assert [s["seed"] for s in suite["streams"]] == [50000, 50001]
    assert set(suite["distribution"]) == {*APPROACHES.split(","), "oracle"}
    for name, rows in suite["standings"].items():
        assert suite["best_fixed"][name].startswith("single-")
        assert rows[suite["best_fixed"][name]]["regret_best_fixed"] == 0.0
        assert rows["oracle"]["regret_oracle"] == 0.0
        assert (tmp_path / "streams" / name / "results.json").is_file()
        replay = json.loads((tmp_path / "streams" / name / "results.json").read_text())
        assert replay["samples"] == 800 and replay["data"] == f"generated:{name}"
    ours = suite["distribution"]["harmonia"]
    assert 0 <= ours["dominated"] <= 2 and ours["streams"] == 2
    assert (tmp_path / "suite.csv").read_text().count("\n") == 2 * 5 + 1


def test_cli_suite_refuses_a_data_file(data_dir: Path, tmp_path: Path) -> None:
    command = ["replay", "traffic", "--suite", "2", "--data", str(tmp_path / "x.csv")]
    result = CliRunner().invoke(app, command, env={"HARMONIA_DATA_DIR": str(data_dir)})
    assert result.exit_code != 0 and "exclude each other" in result.output
