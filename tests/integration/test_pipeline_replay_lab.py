"""The pipeline in the replay lab: an approach is a policy per classify service, replayed
with one engine per service (`harmonia.replay.pipeline.replay_pipeline`), its row written
like every system's (results.json, results.csv, plots)."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harmonia.cli import app
from harmonia.replay.approaches import parse_approaches
from harmonia.replay.lab import run_lab
from harmonia.replay.pipeline import preset_policy
from harmonia.replay.pipeline_lab import SPEC, approach_policies
from harmonia.replay.results import ReplayResult, csv_columns
from harmonia.systems.pipeline import SERVICES
from harmonia.systems.vision.scenario import Scenario, parse_scenario

STAGES = ["camera", "classify", "aggregate"]


def short(samples: int = 200, drift_from: int = 100) -> Scenario:
    """Clean frames, then fog (which hurts every model) to the end."""
    return parse_scenario(
        {
            "samples": samples,
            "drifts": [{"condition": "fog", "start": drift_from, "end": samples, "strength": 0.7}],
        }
    )


def test_each_approach_is_a_policy_per_service_over_its_models() -> None:
    assert parse_approaches("all", "pipeline") == SPEC.settings.approaches
    assert SPEC.settings.approaches == [
        "presets", "harmone", "switch", "switch+retrain", "single", "single+retrain", "harmonia",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="single-small"):
        parse_approaches("single-small", "pipeline")  # a model of one service only
    for name in SPEC.settings.approaches:
        policies = approach_policies(name)
        assert set(policies) == set(SERVICES)
        for service, policy in policies.items():
            assert set(policy.models) <= set(SERVICES[service]), (name, service)
            # every approach starts where the service's shipped policy starts
            assert policy.start_model == preset_policy(service).start_model
            if name != "presets":
                assert policy.strategy == name.split("+")[0].removesuffix("-")
    assert approach_policies("presets")["fast"].policy == "pipeline-fast"
    assert approach_policies("single+retrain")["accurate"].models == ["large"]


@pytest.fixture(scope="module")
def lab(vision_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pipeline-lab")
    seen: list[tuple[str, int, int]] = []
    run = run_lab(
        ["switch", "presets"],
        system="pipeline",
        data=short(),
        out=out,
        data_dir=vision_data_dir,
        workers=1,
        progress=lambda name, done, total: seen.append((name, done, total)),
    )
    assert seen == [("switch", 1, 2), ("presets", 2, 2)]  # no oracle for an ensemble
    assert [path.name for path in run.files] == [
        "results.json", "results.csv", "tradeoff.png", "tradeoff.html", "timeline.png",
        "timeline.html",
    ]  # fmt: skip
    return out


def test_the_lab_runs_approaches_on_the_pipeline_and_writes_results(lab: Path) -> None:
    for name in ("results.json", "results.csv", "tradeoff.png", "timeline.html"):
        assert (lab / name).stat().st_size > 0, name
    result = ReplayResult.read(lab / "results.json")  # as the dashboard's experiments read it
    assert result.system == "pipeline" and result.samples == 200
    assert result.quality_metric == "accuracy" and result.frontier == []
    assert result.drift_regions == [(100, 200)]
    assert [a.approach for a in result.approaches] == ["switch", "presets"]
    for row in result.approaches:
        assert 0.0 <= row.accuracy <= 1.0
        assert set(row.metrics) == {"accuracy", "accuracy.fast", "accuracy.accurate"}
        assert list(row.energy_per_stage) == STAGES
        assert row.energy_j_per_inference == pytest.approx(sum(row.energy_per_stage.values()))
        assert row.energy_per_stage["classify"] > row.energy_per_stage["aggregate"] > 0
        assert set(row.services) == set(SERVICES)
        for service, done in row.services.items():
            assert len(done.timeline.models) == result.samples
            assert set(done.timeline.models) <= set(SERVICES[service])
            assert {a.model for a in done.timeline.actions} - {None} <= set(SERVICES[service])
            assert done.metrics["accuracy"] == row.metrics[f"accuracy.{service}"]
        assert row.switches == sum(d.switches for d in row.services.values())
        assert row.retrains == sum(d.retrains for d in row.services.values())
    switch, presets = result.approaches
    assert switch.services["fast"].policy == "pipeline-fast-switch"
    assert presets.services["accurate"].policy == "pipeline-accurate"
    assert switch.switches >= 1  # fog brings both windows' accuracy down


def test_results_csv_has_a_column_per_stage_and_per_service(lab: Path) -> None:
    rows = list(csv.DictReader((lab / "results.csv").open()))
    columns = list(rows[0])
    base = csv_columns(("accuracy", "accuracy.fast", "accuracy.accurate"))
    assert columns[: len(base)] == list(base)
    assert {f"energy_j.{stage}" for stage in STAGES} <= set(columns)
    assert {"fast.policy", "accurate.retrains", "fast.switches"} <= set(columns)
    assert [r["approach"] for r in rows] == ["switch", "presets"]
    data = json.loads((lab / "results.json").read_text())
    assert data["approaches"][0]["services"]["fast"]["timeline"]["models"][0] == "small"


def test_the_timeline_draws_each_service_of_an_approach(lab: Path) -> None:
    page = (lab / "timeline.html").read_text()
    for row in ("switch · fast", "switch · accurate", "presets · fast", "presets · accurate"):
        assert row in page


def test_cli_replays_the_pipeline(vision_data_dir: Path, tmp_path: Path) -> None:
    env = {**os.environ, "HARMONIA_DATA_DIR": str(vision_data_dir)}
    result = CliRunner().invoke(
        app,
        ["replay", "pipeline", "--approaches", "presets,switch", "--samples", "400",
         "--out", str(tmp_path), "--workers", "1"],
        env=env,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "per stage and per service" in result.output
    assert "2/0/0" in result.output  # switch: each service switched, none retrained
    assert ReplayResult.read(tmp_path / "results.json").samples == 400
