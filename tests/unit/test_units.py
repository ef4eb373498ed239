"""The one rule for energy as people read it: per inference in mJ, totals in J / kJ."""

from __future__ import annotations

import math

import pytest

from harmonia.core.units import format_energy, format_joules, format_mj, format_number


@pytest.mark.parametrize(
    ("joules", "shown"),
    [
        (0.0042, "4.2 mJ"),
        (0.0008, "0.8 mJ"),
        (0.00002, "0.02 mJ"),
        (0.012345, "12.345 mJ"),
        (0.0123456, "12.346 mJ"),
        (0.00515, "5.15 mJ"),
        (0.25, "250 mJ"),
        (1.5, "1500 mJ"),
        (0.0, "0 mJ"),
        (1.234e-7, "1.23e-4 mJ"),  # under 0.001 mJ: the dashboard's exponent form
        (None, "—"),
        (math.nan, "—"),
    ],
)
def test_energy_per_inference_reads_in_millijoules(joules: float | None, shown: str) -> None:
    assert format_mj(joules) == shown


def test_a_table_whose_header_names_the_unit_leaves_it_out() -> None:
    assert format_mj(0.0042, unit=False) == "4.2"


@pytest.mark.parametrize(
    ("joules", "shown"),
    [
        (40.0, "40 J"),
        (1.5312, "1.53 J"),
        (0.5312, "531.2 mJ"),  # under 1 J: as small figures read everywhere
        (0.004, "4 mJ"),
        (800, "800 J"),
        (1234.0, "1.23 kJ"),
        (1200.0, "1.2 kJ"),
        (3.4e6, "3.4 MJ"),
        (None, "—"),
    ],
)
def test_energy_in_total_reads_in_joules_or_kilojoules(joules: float | None, shown: str) -> None:
    assert format_joules(joules) == shown


@pytest.mark.parametrize(
    ("signal", "joules", "shown"),
    [
        ("energy_j", 0.0042, "4.2 mJ"),
        ("mean(energy_j)", 0.0042, "4.2 mJ"),
        ("p95(energy_j)", 0.0125, "12.5 mJ"),
        ("energy_j_per_inference", 0.002, "2 mJ"),
        ("total_energy_j", 1500.0, "1.5 kJ"),
        ("training_joules", 40.0, "40 J"),
    ],
)
def test_an_energy_signal_by_its_name(signal: str, joules: float, shown: str) -> None:
    assert format_energy(signal, joules) == shown


def test_numbers_match_the_dashboards_num() -> None:
    """app.js ``num``: toFixed(digits) without trailing zeros, toExponential(2) below."""
    assert format_number(4.2) == "4.2"
    assert format_number(100.0) == "100"
    assert format_number(-0.0001) == "-1.00e-4"
    assert format_number(-0.0) == "0"
    assert format_number(2.5, 2) == "2.5"
    assert format_number(0.004, 2) == "4.00e-3"


def test_a_decisions_log_line_shows_energy_values_in_mj() -> None:
    """``Action.explain`` (logs, the CLI): an energy value reads as the dashboard shows it."""
    from harmonia.core.actions import Action, ActionKind

    action = Action(
        kind=ActionKind.SWITCH_MODEL,
        model="svm",
        ts=1.0,
        strategy="switch",
        reason="energy_j above 5 mJ",
        trigger="mean(energy_j) > 0.005",
        values={"mean(energy_j)": 0.0062, "score": 0.91234},
    )
    assert action.explain().endswith(
        "[mean(energy_j) > 0.005; mean(energy_j)=6.2 mJ, score=0.9123]"
    )


def test_the_replay_tables_round_energy_as_the_dashboard_does() -> None:
    """The CLI's replay tables, the experiments page (``mJ`` in app.js) and the plots quote
    one figure for an approach: 12.346 (mJ/inf), not 12.3456 in one table and 12.35 in the
    per-stage one."""
    import io

    from rich.console import Console

    from harmonia.cli_replay import _results_table, _stages_table
    from harmonia.replay.results import ApproachResult, ReplayResult, ServiceResult

    row = ApproachResult("harmonia", 0.0123456, {"accuracy": 0.9}, 0.05, 1, 0, 0, "estimate", 0.8)
    row.energy_per_stage = {"camera": 0.0001234, "classify": 0.0122222}
    row.services = {"fast": ServiceResult("harmonia", {"accuracy": 0.9}, 0.01, 0.05, 1, 0, 0)}
    result = ReplayResult("vision", "harmonia", 0, "shipped", 300, [], 200, [row])
    out = io.StringIO()
    console = Console(file=out, width=200)
    console.print(_results_table(result))
    console.print(_stages_table(result))
    text = out.getvalue()
    assert " 12.346 │" in text and "12.3456" not in text
    assert " 0.123 │" in text and " 12.222 │" in text and "12.22 │" not in text
    assert format_mj(0.0123456, unit=False) == "12.346"


def test_models_list_shows_the_energy_stored_with_each_version_in_mj() -> None:
    """The registry's figure (``energy_j_per_inference``, what a strategy quotes as stored)
    reads in mJ as the dashboard shows it; a listing without one has no such column."""
    import io

    from rich.console import Console

    from harmonia.cli_registry import _versions_table

    def version(name: str, metadata: dict[str, object]) -> dict[str, object]:
        return {
            "domain": "vendor", "name": name, "version": 1, "label": None,
            "status": "production", "tags": [], "size": 10, "sha256": "ab" * 32,
            "metadata": metadata,
        }  # fmt: skip

    def shown(found: list[dict[str, object]]) -> str:
        out = io.StringIO()
        Console(file=out, width=200).print(_versions_table(found))
        return out.getvalue()

    stored = {"energy": {"energy_j_per_inference": 0.0042}, "quality": {"r2": 0.9}}
    text = shown([version("lstm", stored), version("svm", {"energy": {}})])
    assert "mJ/inf" in text and " 4.2 │" in text and " — │" in text
    assert "mJ/inf" not in shown([version("flows", {})])
