"""The replay plots: four files written, valid PNGs of the promised size, offline HTML."""

from __future__ import annotations

import html
import re
import struct
from pathlib import Path

import pytest

from harmonia.replay.results import ActionRecord, ApproachResult, ReplayResult, Timeline

pytest.importorskip("matplotlib")
pytest.importorskip("plotly")

from harmonia.replay import plots

MODELS = ["linear", "svm", "lstm"]
SAMPLES = 500
ENERGY = {"linear": 0.00002, "svm": 0.0003, "lstm": 0.004}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def approach(
    name: str,
    r2: float,
    served: list[str],
    actions: list[ActionRecord] | None = None,
) -> ApproachResult:
    versions = [0] * len(served)
    for action in actions or []:
        if action.kind in {"retrain", "reuse_version"} and action.version is not None:
            versions[action.index :] = [action.version] * (len(served) - action.index)
    energy = sum(ENERGY[m] for m in served) / len(served)
    return ApproachResult(
        approach=name,
        energy_j_per_inference=energy,
        metrics={"r2": r2, "mae": 1.0 - r2},
        inference_ms=0.1,
        switches=sum(1 for a in actions or [] if a.kind == "switch_model"),
        retrains=sum(1 for a in actions or [] if a.kind == "retrain"),
        reuses=sum(1 for a in actions or [] if a.kind == "reuse_version"),
        energy_source="estimate",
        objective=r2,
        timeline=Timeline(models=served, versions=versions, actions=actions or []),
    )


def segments(*parts: tuple[str, int]) -> list[str]:
    return [model for model, count in parts for _ in range(count)]


@pytest.fixture
def result() -> ReplayResult:
    switch_actions = [
        ActionRecord(150, "switch_model", "lstm", None, "drift: KL 0.31 > 0.2", "drift"),
        ActionRecord(300, "switch_model", "linear", None, "quality recovered", "window"),
    ]
    harmone_actions = [
        ActionRecord(150, "switch_model", "svm", None, "cheapest model within tolerance", "drift"),
        ActionRecord(200, "retrain", "svm", 1, "retrain svm after drift", "drift"),
    ]
    harmonia_actions = [
        ActionRecord(150, "reuse_version", "svm", 2, "archived version matches data", "drift"),
        ActionRecord(250, "retrain", None, 3, "r2 < 0.8 for 2 windows", "quality"),
        ActionRecord(320, "switch_model", "linear", None, "energy budget", "window"),
    ]
    oracle_actions = [
        ActionRecord(150, "switch_model", "lstm", None, "hindsight best for window", "oracle"),
        ActionRecord(300, "switch_model", "linear", None, "hindsight cheapest", "oracle"),
    ]
    approaches = [
        approach("single-linear", 0.61, ["linear"] * SAMPLES),
        approach("single-lstm", 0.88, ["lstm"] * SAMPLES),
        approach(
            "switch",
            0.80,
            segments(("linear", 150), ("lstm", 150), ("linear", 200)),
            switch_actions,
        ),
        approach("harmone", 0.83, segments(("linear", 150), ("svm", 350)), harmone_actions),
        approach(
            "harmonia",
            0.86,
            segments(("linear", 150), ("svm", 170), ("linear", 180)),
            harmonia_actions,
        ),
        approach(
            "oracle",
            0.87,
            segments(("linear", 150), ("lstm", 150), ("linear", 200)),
            oracle_actions,
        ),
    ]
    return ReplayResult(
        system="traffic",
        menu="linear-svm-lstm",
        seed=7,
        data="synthetic.csv",
        samples=SAMPLES,
        models=MODELS,
        window=50,
        approaches=approaches,
        frontier=[(0.00002, 0.61), (0.0004, 0.8), (0.0012, 0.87), (0.004, 0.88)],
        drift_regions=[(150, 300)],
        energy_per_model=ENERGY,
    )


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from the IHDR chunk, which a valid PNG has right after its signature."""
    head = path.read_bytes()[:24]
    assert head[:8] == PNG_SIGNATURE
    assert head[12:16] == b"IHDR"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


@pytest.fixture
def written(result: ReplayResult, tmp_path: Path) -> dict[str, Path]:
    paths = plots.write_plots(result, tmp_path / "plots")
    return {path.name: path for path in paths}


def test_writes_four_non_empty_files(written: dict[str, Path]) -> None:
    assert sorted(written) == ["timeline.html", "timeline.png", "tradeoff.html", "tradeoff.png"]
    for path in written.values():
        assert path.is_file()
        assert path.stat().st_size > 0


def test_pngs_are_valid_and_of_the_promised_size(
    written: dict[str, Path], result: ReplayResult
) -> None:
    import matplotlib.image

    dpi = plots.DPI
    tradeoff = (round(plots.FIGSIZE[0] * dpi), round(plots.FIGSIZE[1] * dpi))
    rows = len(plots.timeline_approaches(result))
    timeline_in = plots.timeline_figsize(rows)
    timeline = (round(timeline_in[0] * dpi), round(timeline_in[1] * dpi))
    assert png_size(written["tradeoff.png"]) == tradeoff == (1200, 720)
    assert png_size(written["timeline.png"]) == timeline
    image = matplotlib.image.imread(written["tradeoff.png"])
    assert image.shape[:2] == (tradeoff[1], tradeoff[0])
    assert image.std() > 0  # something was drawn


@pytest.mark.parametrize("name", ["tradeoff.html", "timeline.html"])
def test_html_is_self_contained(written: dict[str, Path], name: str) -> None:
    page = written[name].read_text()
    # plotly.js is inline: its banner is in the page and no script is loaded from anywhere.
    # (The embedded library itself mentions cdn.plot.ly and map-tile hosts as defaults for
    # features not used here, so a bare "cdn." search would flag plotly.js itself.)
    assert "plotly.js v" in page
    assert len(page) > 1_000_000
    assert not re.search(r"<script[^>]*\bsrc\s*=", page)
    assert not re.search(r"<link[^>]*\bhref\s*=\s*[\"']https?:", page)
    outside_library = page[page.rfind("</script>", 0, page.rfind("<script")) :]
    assert "cdn." not in outside_library


def test_tradeoff_html_names_every_approach(written: dict[str, Path], result: ReplayResult) -> None:
    page = written["tradeoff.html"].read_text()
    for approach in result.approaches:
        assert f'"name":"{approach.approach}"' in page
    assert '"name":"oracle frontier"' in page


def test_timeline_html_has_adaptive_approaches_and_action_reasons(
    written: dict[str, Path], result: ReplayResult
) -> None:
    page = written["timeline.html"].read_text()
    for approach in result.approaches:
        present = f'"name":"{approach.approach}"' in page
        assert present is not approach.approach.startswith("single-")
        for action in approach.timeline.actions:
            assert html.escape(action.reason, quote=False) in page
    assert "r2 &lt; 0.8 for 2 windows" in page
    assert "model: svm, version: 3" in page  # the retrain without a model takes the served one
    assert '"name":"drift"' in page


def test_baselines_only_in_the_tradeoff(result: ReplayResult) -> None:
    tradeoff = plots.tradeoff_figure(result)
    timeline = plots.timeline_figure(result)
    tradeoff_names = {trace.name for trace in tradeoff.data}
    timeline_names = {trace.name for trace in timeline.data}
    assert {"single-linear", "single-lstm"} <= tradeoff_names
    assert not {"single-linear", "single-lstm"} & timeline_names
    assert {"switch", "harmone", "harmonia", "oracle"} <= timeline_names & tradeoff_names
    assert [a.approach for a in plots.timeline_approaches(result)] == [
        "switch",
        "harmone",
        "harmonia",
        "oracle",
    ]


def test_timeline_lines_are_compressed(result: ReplayResult) -> None:
    figure = plots.timeline_figure(result)
    lines = {trace.name: trace for trace in figure.data if trace.mode == "lines" and trace.name}
    assert list(lines["switch"].x) == [0, 150, 300, 499]
    assert list(lines["switch"].y) == [0, 2, 0, 0]
    # harmonia's reuse at 150 and retrain at 250 change the version, so they are steps too
    assert list(lines["harmonia"].x) == [0, 150, 250, 320, 499]
    assert max(len(trace.x) for trace in figure.data) < 10


def test_consistent_colours_across_plots(result: ReplayResult) -> None:
    tradeoff = {t.name: t.marker.color for t in plots.tradeoff_figure(result).data if t.name}
    timeline = {
        t.name: t.line.color for t in plots.timeline_figure(result).data if t.mode == "lines"
    }
    for name in ("switch", "harmone", "harmonia", "oracle"):
        assert tradeoff[name] == timeline[name]
    assert len({tradeoff[n] for n in ("switch", "harmone", "harmonia", "oracle")}) == 4


def test_change_points() -> None:
    assert plots.change_points([]) == []
    assert plots.change_points(["a"]) == [(0, "a")]
    assert plots.change_points(["a"] * 1000) == [(0, "a"), (999, "a")]
    assert plots.change_points(["a", "b", "b", "a"]) == [(0, "a"), (1, "b"), (3, "a")]
    many = ["a"] * 400 + ["b"] * 300 + ["c"] * 300
    assert plots.change_points(many) == [(0, "a"), (400, "b"), (700, "c"), (999, "c")]


def test_styles_highlight_and_mute() -> None:
    styles = plots.approach_styles(
        ["single-linear", "single-lstm", "switch", "harmone", "harmonia", "oracle"]
    )
    assert {styles[n].emphasis for n in ("harmonia", "harmone", "oracle")} == {"highlight"}
    assert styles["single-linear"].emphasis == styles["single-lstm"].emphasis == "muted"
    assert styles["switch"].emphasis == "normal"
    distinct = {(styles[n].colour, styles[n].marker) for n in ("harmonia", "harmone", "oracle")}
    assert len(distinct) == 3


def test_empty_timelines_still_plot(result: ReplayResult, tmp_path: Path) -> None:
    for item in result.approaches:
        item.timeline = Timeline()
    result.frontier = []
    result.drift_regions = []
    paths = plots.write_plots(result, tmp_path)
    assert all(path.stat().st_size > 0 for path in paths)


def test_every_action_kind_has_a_marker() -> None:
    from harmonia.core.actions import ActionKind
    from harmonia.replay.plots import ACTION_MARKERS

    assert set(ACTION_MARKERS) == set(ActionKind)
