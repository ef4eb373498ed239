"""Plots of a replay: the energy/quality trade-off of every approach, and what each one served.

Two views answer the two questions a comparison raises. ``tradeoff`` puts every approach on the
quality-versus-energy plane (R² for traffic, accuracy for vision) next to the hindsight
oracle's Pareto frontier, so which approach dominates
is visible at a glance (top-left wins). ``timeline`` shows, for every adaptive approach, which
model was in service over the stream, where the stream drifts and where retrains and version
reuses happened, so the numbers of the trade-off can be explained.

Each view is written twice: a PNG (matplotlib, for papers and reports) and a self-contained HTML
page (plotly, with hover text) that opens offline. matplotlib and plotly are imported only when a
plot is drawn, so the pure helpers here (and the rest of the package) work without them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harmonia.replay.plots.styles import ACTION_MARKERS, DPI, FIGSIZE, Style, approach_styles
from harmonia.replay.plots.timeline import (
    change_points,
    drift_shading,
    timeline_approaches,
    timeline_figsize,
    timeline_figure,
    timeline_png,
)
from harmonia.replay.plots.tradeoff import pareto_optimal, tradeoff_figure, tradeoff_png
from harmonia.replay.results import ReplayResult


def _write_html(fig: Any, path: Path) -> None:
    """Embed plotly.js so the page opens offline and never reaches a CDN."""
    import plotly.io as pio

    pio.write_html(
        fig,
        file=str(path),
        include_plotlyjs=True,
        full_html=True,
        config={"displaylogo": False, "responsive": True},
    )


def write_plots(result: ReplayResult, out: Path) -> list[Path]:
    """Write tradeoff.png/.html and timeline.png/.html under ``out``; return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [
        out / "tradeoff.png",
        out / "tradeoff.html",
        out / "timeline.png",
        out / "timeline.html",
    ]
    label_positions = tradeoff_png(result, paths[0])
    _write_html(tradeoff_figure(result, label_positions), paths[1])
    timeline_png(result, paths[2])
    _write_html(timeline_figure(result), paths[3])
    return paths


__all__ = [
    "ACTION_MARKERS",
    "DPI",
    "FIGSIZE",
    "Style",
    "approach_styles",
    "change_points",
    "drift_shading",
    "pareto_optimal",
    "timeline_approaches",
    "timeline_figsize",
    "timeline_figure",
    "timeline_png",
    "tradeoff_figure",
    "tradeoff_png",
    "write_plots",
]
