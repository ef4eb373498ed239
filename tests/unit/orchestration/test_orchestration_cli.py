"""``harmonia deploy plan``: JSON of the documented shape, a readable table, and clear
errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from placement_cases import ROHE
from typer.testing import CliRunner, Result

from harmonia.cli import app

runner = CliRunner()
NODES = str(ROHE / "add_node.json")
SERVICES = str(ROHE / "add_service.json")


def _plan(*args: str) -> Result:
    return runner.invoke(app, ["deploy", "plan", "--nodes", NODES, "--services", SERVICES, *args])


@pytest.mark.parametrize("placer", ["first-fit", "best-fit", "worst-fit"])
def test_json_has_the_documented_shape(placer: str) -> None:
    result = _plan("--placer", placer, "--json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    assert {"placements", "unplaced", "objective", "placer", "status", "gap"} <= set(plan)
    assert plan["placer"] == placer and plan["status"] == "heuristic"
    assert len(plan["placements"]) == 15 and plan["unplaced"] == []
    assert {"service", "replica", "node"} <= set(plan["placements"][0])
    assert plan["objective"]["name"] == "nodes" and plan["objective"]["value"] >= 1


def test_optimal_with_objective_and_time_limit() -> None:
    pytest.importorskip("ortools")
    result = _plan("--placer", "optimal", "--objective", "imbalance", "--time-limit", "3", "--json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    assert plan["objective"]["name"] == "imbalance"
    assert plan["objective"]["bound"] is not None and plan["gap"] is not None


def test_the_table_shows_nodes_services_and_the_summary() -> None:
    result = _plan("--placer", "best-fit")
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.startswith("best-fit: heuristic; nodes")
    assert "nodes in use" in out and "RaspberryPi_02" in out and "services" in out


def test_unplaced_replicas_are_listed_and_the_command_succeeds(tmp_path: Path) -> None:
    services = tmp_path / "services.yaml"
    services.write_text("services:\n  - {name: huge, cpu_millicores: 64000, replicas: 2}\n")
    result = runner.invoke(
        app,
        ["deploy", "plan", "--nodes", NODES, "--services", str(services), "--placer", "first-fit"],
    )
    assert result.exit_code == 0, result.output
    assert "not placed" in result.output and "huge" in result.output


def test_errors_exit_2_and_say_what_is_wrong(tmp_path: Path) -> None:
    bad = tmp_path / "nodes.yaml"
    bad.write_text("nodes:\n  - {name: a, cores: 4}\n")
    result = runner.invoke(
        app, ["deploy", "plan", "--nodes", str(bad), "--services", SERVICES, "--placer", "best-fit"]
    )
    assert result.exit_code == 2 and "nodes.0.memory_mib" in result.output
    result = _plan("--placer", "random-fit")
    assert result.exit_code == 2 and "unknown placer 'random-fit'" in result.output
    result = _plan("--placer", "best-fit", "--objective", "carbon")
    assert result.exit_code == 2 and "unknown objective" in result.output
    result = _plan("--placer", "best-fit", "--objective", "energy")  # ROHE's nodes have no power
    assert result.exit_code == 2 and "power model" in result.output
