"""The traffic system and the replay lab, end to end on real models and the shipped data."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from harmonia.cli import app
from harmonia.core.actions import Action, ActionKind
from harmonia.energy import EstimateMeter
from harmonia.registry import CURRENT, ModelRegistry
from harmonia.replay.approaches import APPROACHES, approach_policy, parse_approaches
from harmonia.replay.results import CSV_COLUMNS, ReplayResult
from harmonia.replay.runner import run_approach
from harmonia.systems.traffic.data import (
    TEST,
    TRAIN,
    DataError,
    lag_windows,
    load_flow,
    shipped,
)
from harmonia.systems.traffic.models import Scaler, TrafficModel, holdout_r2, train
from harmonia.systems.traffic.system import RETRAIN_WINDOW, TrafficSystem

SHORT = 1500  # samples of the test stream for the end-to-end replays


@pytest.fixture
def system(base_registry: ModelRegistry, tmp_path: Path) -> TrafficSystem:
    """A traffic system on a private fork of the trained registry."""
    return TrafficSystem(base_registry.fork(tmp_path / "registry"), "harmonia", EstimateMeter())


def test_version_one_scaler_saw_only_the_training_data(system: TrafficSystem) -> None:
    training, test = load_flow(shipped(TRAIN)), load_flow(shipped(TEST))
    assert test.max() > training.max()  # the test stream reaches values training never had
    for kind in ("linear", "svm", "lstm"):
        scaler = system.model(kind, 1).scaler
        assert scaler == Scaler.fit(training)
        assert scaler.high == training.max() < test.max()


def test_retraining_fits_only_the_data_observed_so_far(
    base_registry: ModelRegistry, tmp_path: Path
) -> None:
    series = load_flow(shipped(TEST))[:3200].copy()
    series[3010:] = 10_000.0  # the future: if a retrain saw it, its scaler would say so
    kept = tmp_path / "kept"
    result = run_approach(
        "single-linear+retrain",
        series,
        base_registry,
        "harmonia",
        EstimateMeter(),
        keep_registry=kept,
    )
    assert result.retrains == 1  # every 15 windows of 200: at sample 2,999
    retrained = TrafficModel.load(ModelRegistry(kept).get("linear", 2).path)
    assert retrained.scaler.high < 10_000.0
    assert retrained.scaler.high == series[: 2999 + 5 + 1][-1200:].max()


def test_a_retrains_energy_lowers_the_objective_as_it_raises_the_energy(
    base_registry: ModelRegistry,
) -> None:
    # 3,000 samples: the one periodic retrain runs after the last prediction, so both
    # approaches serve the same predictions and differ only by the retrain's energy
    series = load_flow(shipped(TEST))[:3005]
    meter = EstimateMeter()
    fixed = run_approach("single-linear", series, base_registry, "harmonia", meter)
    retrained = run_approach("single-linear+retrain", series, base_registry, "harmonia", meter)
    assert retrained.retrains == 1
    assert retrained.r2 == fixed.r2
    spread = retrained.energy_j_per_inference - fixed.energy_j_per_inference
    assert spread > 0
    objective = approach_policy("single-linear+retrain").objective
    low, high = objective.energy_range_j
    # unclamped here (the linear model costs far less than the range): the score falls by
    # the energy weight times the spread, normalised by the range, in every window
    assert fixed.objective - retrained.objective == pytest.approx(
        objective.weights.energy * spread / (high - low), rel=1e-3
    )


def test_retrain_creates_a_version_and_reuse_restores_the_archived_model(
    system: TrafficSystem,
) -> None:
    test = load_flow(shipped(TEST))
    inputs, _ = lag_windows(test[:400])
    rows = inputs.tolist()
    system.switch("linear")
    original = [system.predict(row) for row in rows]

    drifted = test[:1500] * 1.8 + 40.0
    retrained = system.retrain("linear", drifted, reason="test")
    assert retrained.version.version == 2
    assert retrained.version.fingerprint and retrained.joules > 0
    assert system.registry.alias("linear", CURRENT).version == 2  # type: ignore[union-attr]
    after_retrain = [system.predict(row) for row in rows]
    assert not np.allclose(after_retrain, original)

    # A fresh process would have nothing in memory: reuse must load v1's own artifacts.
    fresh = TrafficSystem(system.registry, "harmonia", EstimateMeter())
    fresh.reuse("linear", 1, reason="test")
    assert fresh.registry.alias("linear", CURRENT).version == 1  # type: ignore[union-attr]
    assert [fresh.predict(row) for row in rows] == original
    assert (fresh.registry.get("linear", 1).path / "model.json").exists()
    events = [e for e in fresh.registry.history("linear") if e["event"] == "alias"]
    assert [e["to"] for e in events][-2:] == [2, 1]


def test_a_retrained_version_stores_what_it_reads_on_held_out_recent_data(
    system: TrafficSystem,
) -> None:
    # Without its own figure a retrained version borrowed version 1's: a linear model fitted
    # to noise promised what the clean one did, so nothing brought the clean one back.
    test = load_flow(shipped(TEST))[:1500]
    noisy = test + np.random.default_rng(0).normal(0.0, float(test.std()), test.size)
    retrained = system.retrain("linear", noisy, reason="test")
    stored = retrained.version.metrics["r2"]
    recent = noisy[-RETRAIN_WINDOW:]
    assert stored == pytest.approx(holdout_r2("linear", "harmonia", recent, seed=system.seed))
    assert stored < system.registry.get("linear", 1).metrics["r2"] - 0.2


def test_unknown_archived_version_is_refused(system: TrafficSystem) -> None:
    with pytest.raises(LookupError):
        system.reuse("linear", 9)


def test_replay_is_deterministic_for_a_seed(base_registry: ModelRegistry) -> None:
    series = load_flow(shipped(TEST))[: SHORT + 5]

    def run(seed: int) -> tuple:
        result = run_approach(
            "harmone", series, base_registry, "harmonia", EstimateMeter(), seed=seed
        )
        actions = [(a.index, a.kind, a.model, a.version) for a in result.timeline.actions]
        # not the objective: it counts each retrain's energy as measured, which varies
        return result.r2, result.timeline.models, actions

    first = run(3)
    assert first == run(3)
    assert first[2], "harmone should act on this stretch"


def test_every_approach_has_a_valid_policy() -> None:
    for name in APPROACHES:
        if name != "oracle":
            policy = approach_policy(name)
            assert policy.window.samples == 200


def test_approach_names_are_checked() -> None:
    assert parse_approaches("all") == APPROACHES
    assert parse_approaches("harmone, oracle") == ["harmone", "oracle"]
    with pytest.raises(ValueError, match="unknown approach"):
        parse_approaches("harmone,magic")


def test_harmone_menu_uses_harmones_published_hyperparameters() -> None:
    training = load_flow(shipped(TRAIN))
    assert train("linear", "harmone", training).params == {"alpha": 256.0}
    assert train("svm", "harmone", training).params == {"C": 0.05, "tol": 0.16}
    from harmonia.systems.traffic.models import LSTM_PARAMS

    assert LSTM_PARAMS == {"hidden": 50, "epochs": 50, "batch": 16, "lr": 1e-3}


def test_data_without_a_flow_column_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("speed\n1\n2\n")
    with pytest.raises(DataError, match="no 'flow' column"):
        load_flow(bad)
    result = CliRunner().invoke(
        app, ["replay", "traffic", "--data", str(bad), "--out", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "no 'flow' column (columns found: speed)" in result.output


# -- the whole lab through the CLI, on a short stream ----------------------------------------
@pytest.fixture(scope="module")
def short_replay(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("replay")
    stream = out / "short.csv"
    with stream.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["flow"])
        writer.writerows([[v] for v in load_flow(shipped(TEST))[: SHORT + 5]])
    env = {**os.environ, "HARMONIA_DATA_DIR": str(data_dir)}
    result = CliRunner().invoke(
        app,
        ["replay", "traffic", "--approaches", "all", "--data", str(stream), "--out", str(out)],
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert "harmonia" in result.output and "oracle" in result.output
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
    assert [r["approach"] for r in rows] == APPROACHES
    assert list(rows[0]) == list(CSV_COLUMNS)
    data = json.loads((short_replay / "results.json").read_text())
    assert data["samples"] == SHORT


def test_no_switch_only_approach_beats_the_oracle(short_replay: Path) -> None:
    result = ReplayResult.read(short_replay / "results.json")
    oracle = result.approach("oracle")
    switch_only = ["switch", "single-linear", "single-svm", "single-lstm"]
    for name in switch_only:
        assert result.approach(name).objective <= oracle.objective + 1e-12, name
    assert (
        oracle.r2
        >= max(result.approach(n).r2 for n in ("single-linear", "single-svm", "single-lstm")) - 1e-9
    )


def test_results_are_consistent(short_replay: Path) -> None:
    result = ReplayResult.read(short_replay / "results.json")
    for approach in result.approaches:
        assert len(approach.timeline.models) == result.samples
        kinds = [a.kind for a in approach.timeline.actions]
        assert approach.switches == kinds.count(ActionKind.SWITCH_MODEL.value)
        assert approach.retrains == kinds.count("retrain")
        assert approach.energy_j_per_inference > 0
        assert approach.energy_source == "estimate"
    assert result.frontier == sorted(result.frontier)


def test_apply_of_none_changes_nothing(system: TrafficSystem) -> None:
    from harmonia.replay.runner import apply_action

    knowledge = system.knowledge(["linear", "svm", "lstm"], "lstm")
    none = Action(kind=ActionKind.NONE, ts=0.0, strategy="x", reason="r", trigger="t")
    assert apply_action(none, system, knowledge, np.zeros(10)) == 0.0
    assert system.active == "lstm" and knowledge.active_model == "lstm"
