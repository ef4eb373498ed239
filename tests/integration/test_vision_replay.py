"""The vision system and the replay lab on it, end to end on real models and images."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from harmonia.cli import app
from harmonia.energy import EstimateMeter
from harmonia.registry import CURRENT, ModelRegistry
from harmonia.replay.approaches import VISION, approach_policy, parse_approaches
from harmonia.replay.results import ReplayResult, csv_columns
from harmonia.systems.vision.scenario import load_scenario
from harmonia.systems.vision.shipped import SOURCE, shipped_model
from harmonia.systems.vision.system import VisionSystem

SHORT = 700  # samples of the default scenario for the end-to-end replay: clean, then dark


@pytest.fixture
def system(vision_registry: ModelRegistry, tmp_path: Path) -> VisionSystem:
    """A vision system on a private fork of the trained registry."""
    return VisionSystem(vision_registry.fork(tmp_path / "registry"), EstimateMeter())


def test_version_one_records_quality_energy_and_retrain_cost(system: VisionSystem) -> None:
    """Version 1 is the shipped weights: measured here (quality, energy, a fine-tune's
    cost), with no training energy, since none was spent here."""
    energy = system.energy_per_inference()
    assert energy["small"] < energy["medium"] < energy["large"]
    for kind in ("small", "medium", "large"):
        version = system.registry.get(kind, 1)
        metrics = version.metrics
        assert 0.85 < metrics["accuracy"] <= 1.0
        assert 0.0 < metrics["confidence"] <= 1.0
        assert metrics["retrain_joules"] > 0.0
        assert "training_joules" not in metrics
        assert version.params["condition"] == "clean"
        assert version.training["source"] == SOURCE
        # the stored weights are the shipped ones
        shipped = shipped_model(kind)
        assert shipped is not None
        for stored, made in zip(
            system.model(kind).net.state_dict().values(),
            shipped.net.state_dict().values(),
            strict=True,
        ):
            assert torch.equal(stored, made)


def test_without_shipped_weights_version_one_is_trained_here_and_its_cost_stored(
    tmp_path: Path,
) -> None:
    system = VisionSystem(
        ModelRegistry(tmp_path / "registry"),
        EstimateMeter(),
        models=["small"],
        shipped_weights=False,
    )
    system.ensure_trained()
    version = system.registry.get("small", 1)
    assert 0.0 < version.metrics["retrain_joules"] < version.metrics["training_joules"]
    assert version.training["source"] == "sklearn digits"
    assert version.metrics["accuracy"] > 0.85


def test_every_version_stores_a_stress_test_that_tells_the_models_apart(
    system: VisionSystem,
) -> None:
    """Accuracy under each known condition, with the mean luminance there. The small CNN
    reads dark images best (the larger ones fall to near chance); a retrained version is
    tested too."""
    stressed = {kind: system.registry.get(kind, 1).metrics for kind in system.models}
    for metrics in stressed.values():
        for condition in ("dark", "fog", "noise", "blur"):
            for strength in ("mild", "strong"):
                assert 0.0 <= metrics[f"context.{condition}-{strength}.accuracy"] <= 1.0
        assert metrics["context.dark-strong.drift_mean"] < metrics["context.dark-mild.drift_mean"]
        assert metrics["context.dark-mild.drift_mean"] < metrics["context.fog-mild.drift_mean"]
        # sharpness tells noise from the clean training images, where luminance cannot
        own, spread = metrics["inputs.sharpness_mean"], metrics["inputs.sharpness_std"]
        assert metrics["context.noise-mild.sharpness_mean"] > own + 5 * spread
        assert metrics["context.blur-strong.sharpness_mean"] < own
    dark = {kind: m["context.dark-strong.accuracy"] for kind, m in stressed.items()}
    assert max(dark, key=dark.__getitem__) == "small", dark
    scenario = load_scenario()
    stretch = next(d for d in scenario.drifts if d.condition == "dark")
    images, _ = scenario.stream()
    retrained = system.retrain("medium", images[: stretch.start + 50], reason="test")
    tuned = retrained.version.metrics
    dark_before = stressed["medium"]["context.dark-strong.accuracy"]
    assert tuned["context.dark-strong.accuracy"] > dark_before + 0.2
    assert "inputs.sharpness_std" in tuned  # what its own (dark) training images look like


@pytest.mark.slow  # sets up two registries
def test_a_versions_stored_accuracy_does_not_depend_on_what_else_was_trained(
    tmp_path: Path,
) -> None:
    """Each model is scored on the same jittered validation copies: the draws used to follow
    on from the models trained before it in the same call, so a registry trained a model at
    a time (or a pipeline's subset of models) stored other accuracies for the same weights."""
    together = VisionSystem(
        ModelRegistry(tmp_path / "both"), EstimateMeter(), models=["small", "medium"]
    )
    together.ensure_trained()
    alone = VisionSystem(ModelRegistry(tmp_path / "one"), EstimateMeter(), models=["medium"])
    alone.ensure_trained()
    stored = [system.registry.get("medium", 1).metrics["accuracy"] for system in (together, alone)]
    assert stored[0] == stored[1]


@pytest.mark.parametrize("condition", ["dark", "fog"])
def test_retrain_beats_the_version_it_replaced_and_reuse_restores_it(
    system: VisionSystem, condition: str
) -> None:
    scenario = load_scenario()
    stretch = next(d for d in scenario.drifts if d.condition == condition)
    images, labels = scenario.stream()
    drifted, truth = images[stretch.start : stretch.end], labels[stretch.start : stretch.end]
    system.switch("medium")
    before = system.model("medium").accuracy(drifted, truth)
    clean = images[: stretch.start - 100]
    clean_accuracy = system.model("medium").accuracy(clean, labels[: stretch.start - 100])

    retrained = system.retrain("medium", images[: stretch.start + 50], reason="test")
    assert retrained.diagnosis.condition == condition
    assert retrained.version.version == 2 and retrained.joules > 0
    assert retrained.version.params["condition"] == condition
    assert system.registry.alias("medium", CURRENT).version == 2  # type: ignore[union-attr]
    after = system.model("medium").accuracy(drifted, truth)
    assert after > before + 0.2, (before, after)

    # A fresh process has nothing in memory: reuse loads each version's own artifacts.
    fresh = VisionSystem(system.registry, EstimateMeter())
    fresh.reuse("medium", 1, reason="clean again")
    assert fresh.model("medium").accuracy(clean, labels[: stretch.start - 100]) == clean_accuracy
    fresh.reuse("medium", 2, reason=f"{condition} again")
    assert fresh.serving_version == 2
    assert fresh.model("medium").accuracy(drifted, truth) == after


def test_a_returning_condition_is_closest_to_the_version_tuned_for_it(
    system: VisionSystem,
) -> None:
    """What ``reuse_version`` decides on: the engine's drift detector (KL on 10 bins, as the
    vision approaches configure it) between a window's mean luminances and each stored
    version's fingerprint. The version tuned for the returning condition must be closest."""
    from harmonia.drift import KLDivergenceDetector
    from harmonia.systems.vision.data import mean_luminance

    scenario = load_scenario()
    images, _ = scenario.stream()
    first = {}
    for stretch in scenario.drifts:
        if stretch.condition in ("dark", "fog") and stretch.condition not in first:
            done = system.retrain("medium", images[: stretch.start + 50], reason="test")
            first[stretch.condition] = done.version
    versions = {"clean": system.registry.get("medium", 1), **first}
    returning = [d for d in scenario.drifts if d.condition in first][2:]
    assert {d.condition for d in returning} == {"dark", "fog"}
    for stretch in returning:
        window = mean_luminance(images[stretch.start : stretch.start + VISION.window])
        distance = {
            name: KLDivergenceDetector(bins=10).fit(np.asarray(v.fingerprint)).score(window)
            for name, v in versions.items()
        }
        closest = min(distance, key=lambda name: distance[name].statistic)
        assert closest == stretch.condition, {k: d.statistic for k, d in distance.items()}
        reuse_threshold = VISION.harmonia_options["reuse_threshold"]
        assert distance[closest].statistic < reuse_threshold


def test_every_vision_approach_has_a_valid_policy() -> None:
    assert parse_approaches("all", "vision") == VISION.approaches
    for name in VISION.approaches:
        if name != "oracle":
            policy = approach_policy(name, "vision")
            decides = VISION.harmonia_window if name == "harmonia" else None
            assert policy.window.samples == (decides or VISION.window)
            assert policy.objective.quality == "accuracy"
    with pytest.raises(ValueError, match="single-lstm"):
        parse_approaches("single-lstm", "vision")


def test_a_bad_scenario_file_fails_before_training(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("samples: 100\ndrifts:\n  - {condition: fog, start: 0, end: 10, strength: 2}\n")
    result = CliRunner().invoke(
        app, ["replay", "vision", "--data", str(bad), "--out", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "drifts[0].strength: fog strength must be in (0, 1)" in " ".join(result.output.split())


# -- the whole lab through the CLI, on a short stream ----------------------------------------
@pytest.fixture(scope="module")
def short_replay(vision_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("vision-replay")
    env = {**os.environ, "HARMONIA_DATA_DIR": str(vision_data_dir)}
    result = CliRunner().invoke(
        app,
        ["replay", "vision", "--approaches", "all", "--samples", str(SHORT), "--out", str(out)],
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert "harmonia" in result.output and "accuracy" in result.output
    return out


def test_cli_replay_writes_results_and_plots(short_replay: Path) -> None:
    for name in (
        "results.json",
        "results.csv",
        "tradeoff.png",
        "tradeoff.html",
        "timeline.png",
        "timeline.html",
    ):
        assert (short_replay / name).stat().st_size > 0, name
    rows = list(csv.DictReader((short_replay / "results.csv").open()))
    assert [r["approach"] for r in rows] == VISION.approaches
    assert list(rows[0]) == list(csv_columns(("accuracy", "confidence")))
    data = json.loads((short_replay / "results.json").read_text())
    assert data["samples"] == SHORT and data["system"] == "vision"
    assert data["quality_metric"] == "accuracy"
    assert data["drift_regions"] == [[300, 600]] and data["drift_conditions"] == ["dark"]
    assert "Accuracy over the whole stream" in (short_replay / "tradeoff.html").read_text()


def test_results_are_consistent(short_replay: Path) -> None:
    result = ReplayResult.read(short_replay / "results.json")
    for approach in result.approaches:
        assert len(approach.timeline.models) == result.samples
        assert 0.0 <= approach.accuracy <= 1.0
        assert approach.energy_j_per_inference > 0
        assert np.isnan(approach.r2)
    oracle = result.approach("oracle")
    for name in ("switch", "single-small", "single-medium", "single-large"):
        assert result.approach(name).objective <= oracle.objective + 1e-12, name
    # the dark stretch is answered (how depends on measured energies: retrain or switch)
    assert [a for a in result.approach("harmonia").timeline.actions if a.index >= 300]


@pytest.mark.skipif(
    __import__("importlib").util.find_spec("ultralytics") is None,
    reason="ultralytics is not installed (the YOLO adapter is optional; nothing is downloaded)",
)
def test_yolo_adapter_serves_user_supplied_weights(tmp_path: Path) -> None:
    from harmonia.systems.vision.yolo import YoloSystem, YoloUnavailable

    weights = os.environ.get("HARMONIA_YOLO_WEIGHTS")
    if not weights:
        pytest.skip("set HARMONIA_YOLO_WEIGHTS to a local YOLO .pt file to test the adapter")
    system = YoloSystem({"user": weights})
    label, confidence = system.predict(np.zeros((64, 64, 3), dtype=np.float32))
    assert isinstance(label, int) and 0.0 <= confidence <= 1.0
    with pytest.raises(YoloUnavailable):
        system.retrain("user", None)


def test_yolo_adapter_refuses_a_missing_file_clearly(tmp_path: Path) -> None:
    from harmonia.systems.vision.yolo import YoloModel, YoloUnavailable

    with pytest.raises(YoloUnavailable, match=r"no such weights file|ultralytics"):
        YoloModel(tmp_path / "yolov8n.pt")


def test_a_fresh_process_charges_the_first_fine_tune_for_the_work_alone(tmp_path: Path) -> None:
    """A process's first optimiser imports what PyTorch loads lazily (seconds of CPU). With
    shipped weights nothing trains before the fine-tune that measures ``retrain_joules``,
    and the small MLP's fine-tune was charged 16.5 J, more than the medium CNN's (6 J): a
    strategy then took the cheapest model to retrain for the dearest. Measured in a fresh
    interpreter, as the replay lab's first run does."""
    script = (
        "import json, sys\n"
        "from harmonia.energy import EstimateMeter\n"
        "from harmonia.registry import ModelRegistry\n"
        "from harmonia.systems.vision.system import VisionSystem\n"
        "system = VisionSystem(ModelRegistry(sys.argv[1]), EstimateMeter(),"
        " models=['small', 'medium'])\n"
        "system.ensure_trained()\n"
        "print(json.dumps({k: system.registry.get(k, 1).metrics['retrain_joules']"
        " for k in system.models}))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "registry")],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    joules = json.loads(run.stdout.strip().splitlines()[-1])
    assert joules["small"] < joules["medium"], joules


def test_a_replay_measures_new_versions_under_the_stress_test_only_for_a_strategy_that_reads_it(
    vision_registry: ModelRegistry, tmp_path: Path
) -> None:
    """HarmonE's strategy reads no stress test, so a replay of it spares its new versions
    that measurement (longer than each fine-tune itself); version 1 keeps its own, and a
    retrain for harmonia measures it (`test_every_version_stores_a_stress_test...`)."""
    from harmonia.replay.runner import run_approach
    from harmonia.replay.systems import spec_for

    spec = spec_for("vision")
    stream = spec.stream(spec.load(None, SHORT))
    kept = tmp_path / "harmone"
    result = run_approach(
        "harmone",
        stream,
        vision_registry,
        "harmonia",
        EstimateMeter(),
        system="vision",
        keep_registry=kept,
    )
    assert result.retrains >= 1
    registry = ModelRegistry(kept)
    for kind in VISION.models:
        for version in registry.versions(kind):
            stressed = any(key.startswith("context.") for key in version.metrics)
            assert stressed == (version.version == 1), (kind, version.version)
