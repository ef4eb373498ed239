"""The simple strategies' rules, plugin discovery through entry points, and the energy CLI."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harmonia.cli import app
from harmonia.core.actions import ActionKind
from harmonia.core.errors import UnknownPluginError
from harmonia.plugins import STRATEGIES, _group, create_plugin, plugin_names
from harmonia.policies import build_engine, parse_policy_text
from support import policy, window


def drive(engine, windows: int, **kwargs) -> list:
    knowledge = engine.new_knowledge()
    out = []
    for i in range(windows):
        samples = window(knowledge.active_model, n=50, start=50.0 * i, seed=i, **kwargs)
        knowledge.observe_many(samples)
        actions = engine.step(knowledge, samples[-1].ts)
        for action in actions:
            if action.kind is ActionKind.SWITCH_MODEL:
                knowledge.activate(action.model)
        out.append(actions)
    return out


def test_single_retrains_every_n_windows_and_never_switches() -> None:
    engine = build_engine(
        policy(
            strategy="single",
            options={"retrain_every": 3},
            boundaries=[{"when": "quality < 0.99", "then": "switch_model"}],
        )
    )
    per_window = drive(engine, 9)
    kinds = [[a.kind for a in actions] for actions in per_window]
    assert kinds == [
        [],
        [],
        [ActionKind.RETRAIN],
        [],
        [],
        [ActionKind.RETRAIN],
        [],
        [],
        [ActionKind.RETRAIN],
    ]
    assert per_window[2][0].trigger == "every 3 windows"


def test_switch_tries_each_model_then_picks_the_best_known_score() -> None:
    engine = build_engine(
        policy(strategy="switch", boundaries=[{"when": "quality < 0.99", "then": "switch_model"}])
    )
    knowledge = engine.new_knowledge()
    scores = {"linear": 0.5, "svm": 0.9, "lstm": 0.7}
    visited = []
    for i in range(5):
        active = knowledge.active_model
        visited.append(active)
        knowledge.observe_many(window(active, n=50, r2=scores[active], start=50.0 * i, seed=i))
        [action] = engine.step(knowledge, 50.0 * (i + 1))
        knowledge.activate(action.model)
    # Untried models come first in the policy's order (svm, then lstm); once all are
    # known, the best-scoring other model wins (svm, not linear).
    assert visited[:4] == ["linear", "svm", "lstm", "svm"]


def test_unknown_strategy_names_the_available_ones() -> None:
    with pytest.raises(UnknownPluginError, match="available: harmone, harmonia, single, switch"):
        create_plugin(STRATEGIES, "nope")


def test_a_third_party_strategy_registers_through_entry_points(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "calm_strategy.py").write_text(
        "class Calm:\n"
        "    name = 'calm'\n"
        "    detectors = ()\n"
        "    def decide(self, situation):\n"
        "        return []\n"
    )
    dist = tmp_path / "calm_strategy-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: calm-strategy\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[harmonia.strategies]\ncalm = calm_strategy:Calm\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    _group.cache_clear()
    try:
        assert "calm" in plugin_names(STRATEGIES)
        text = "policy: p\nsystem: s\nmodels: [a, b]\nstrategy: calm\n"
        engine = build_engine(parse_policy_text(text))
        assert engine.strategy.name == "calm"
    finally:
        _group.cache_clear()
        sys.modules.pop("calm_strategy", None)


def test_energy_command_reports_the_backend_and_a_reading() -> None:
    result = CliRunner().invoke(app, ["energy", "--seconds", "0.05"])
    assert result.exit_code == 0, result.output
    assert "backend:" in result.output
    # a total: in J, or under 1 J in mJ (harmonia.core.units.format_joules)
    assert " J (" in result.output or " mJ (" in result.output


def test_energy_command_rejects_an_unknown_backend() -> None:
    result = CliRunner().invoke(app, ["energy", "--backend", "solar"])
    assert result.exit_code == 2
    assert "solar" in result.output
