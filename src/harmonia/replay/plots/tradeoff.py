"""The trade-off plot: every approach on the quality-versus-energy plane, beside the
hindsight oracle's Pareto frontier (top-left wins), with labels placed so none hides
another. A PNG (matplotlib) and an interactive figure (plotly)."""

from __future__ import annotations

import html
import itertools
import math
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harmonia.core.units import format_mj
from harmonia.replay.plots.styles import (
    DPI,
    FIGSIZE,
    MUTED_TEXT,
    OKABE_ITO,
    Style,
    approach_styles,
    title,
)
from harmonia.replay.results import ApproachResult, ReplayResult

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.backend_bases import RendererBase


def pareto_optimal(points: dict[str, tuple[float, float]]) -> set[str]:
    """Names whose (energy, r2) no other point beats: no more energy, no less R², one strictly.

    >>> sorted(pareto_optimal({"a": (1.0, 0.9), "b": (2.0, 0.8), "c": (0.5, 0.5)}))
    ['a', 'c']
    """
    return {
        name
        for name, (energy, r2) in points.items()
        if not any(
            (e <= energy and r >= r2) and (e < energy or r > r2)
            for other, (e, r) in points.items()
            if other != name
        )
    }


def use_log_scale(values: Iterable[float], ratio: float = 30.0) -> bool:
    """Whether energies span enough orders of magnitude that a linear axis would crush them.

    A linear regression costs a fraction of what an LSTM does; on a linear axis every cheap
    approach would sit on top of each other at the left edge.

    >>> use_log_scale([0.01, 1.0]), use_log_scale([0.5, 1.0]), use_log_scale([0.0, 1.0])
    (True, False, False)
    """
    values = list(values)
    if not values or min(values) <= 0:
        return False
    return max(values) / min(values) >= ratio


#: where a label may go around its marker: offset in points, alignment, plotly's textposition
_CANDIDATES: tuple[tuple[str, float, float, str, str, str], ...] = (
    ("right", 9, 0, "left", "center", "middle right"),
    ("top-right", 6, 6, "left", "bottom", "top right"),
    ("bottom-right", 6, -6, "left", "top", "bottom right"),
    ("top", 0, 9, "center", "bottom", "top center"),
    ("bottom", 0, -9, "center", "top", "bottom center"),
    ("left", -9, 0, "right", "center", "middle left"),
    ("top-left", -6, 6, "right", "bottom", "top left"),
    ("bottom-left", -6, -6, "right", "top", "bottom left"),
)


_TEXTPOSITION = {c[0]: c[5] for c in _CANDIDATES}
Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in display pixels


def overlap(a: Box, b: Box) -> float:
    """Area two boxes share, zero when they are apart.

    >>> overlap((0, 0, 2, 2), (1, 1, 3, 3)), overlap((0, 0, 1, 1), (2, 2, 3, 3))
    (1, 0)
    """
    return max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))


def _place_labels(
    ax: Axes,
    renderer: RendererBase,
    anchors: list[tuple[str, float, float, dict[str, Any]]],
    obstacles: list[Box],
) -> dict[str, str]:
    """Annotate each anchor where its label hides nothing, trying positions around the marker.

    Greedy, in the order given (most important first): each label takes the first position that
    overlaps no marker, line or earlier label and stays inside the axes, else the least bad one.
    Returns the chosen position per name, so the HTML version can put its labels alike.
    """
    inside = ax.get_window_extent(renderer)
    placed: list[Box] = []
    chosen: dict[str, str] = {}
    for name, x, y, text_kw in anchors:
        best: tuple[float, str, Any] | None = None
        for key, dx, dy, ha, va, _ in _CANDIDATES:
            label = ax.annotate(
                name,
                (x, y),
                xytext=(dx, dy),
                textcoords="offset points",
                ha=ha,
                va=va,
                **text_kw,
            )
            extent = label.get_window_extent(renderer)
            box: Box = (extent.x0 - 2, extent.y0 - 1, extent.x1 + 2, extent.y1 + 1)
            cost = sum(overlap(box, other) for other in [*placed, *obstacles])
            outside = extent.width * extent.height - overlap(
                box, (inside.x0, inside.y0, inside.x1, inside.y1)
            )
            cost += 10 * max(outside, 0)
            if best is None or cost < best[0]:
                if best is not None:
                    best[2].remove()
                best = (cost, key, label)
            else:
                label.remove()
            if cost == 0:
                break
        assert best is not None
        extent = best[2].get_window_extent(renderer)
        placed.append((extent.x0, extent.y0, extent.x1, extent.y1))
        chosen[name] = best[1]
    return chosen


def _label_order(names: Iterable[str], styles: dict[str, Style]) -> list[str]:
    """Highlighted approaches get the best label spots, baselines what is left."""
    rank = {"highlight": 0, "normal": 1, "muted": 2}
    return sorted(names, key=lambda n: rank[styles[n].emphasis])


def _energy_mj(approach: ApproachResult) -> float:
    return approach.energy_j_per_inference * 1e3


#: how each quality metric is written on axes and in hover text
QUALITY_LABELS = {"r2": "R²", "mae": "MAE", "accuracy": "Accuracy", "confidence": "confidence"}


def quality_axis_title(result: ReplayResult) -> str:
    """The y axis of the trade-off: the result's headline quality metric.

    >>> from harmonia.replay.results import ReplayResult
    >>> quality_axis_title(ReplayResult("vision", "-", 0, "s", 9, [], 50, [],
    ...     quality_metric="accuracy"))
    'Accuracy over the whole stream — higher is better'
    """
    label = QUALITY_LABELS.get(result.quality_metric, result.quality_metric)
    return f"{label} over the whole stream — higher is better"


def metrics_text(approach: ApproachResult) -> str:
    """An approach's quality metrics for hover text, e.g. ``R²: 0.9000, MAE: 12.5``."""
    return ", ".join(
        f"{QUALITY_LABELS.get(name, name)}: {value:.4f}" if name != "mae" else f"MAE: {value:.4g}"
        for name, value in approach.metrics.items()
    )


def _energy_axis_title(log: bool) -> str:
    scale = ", log scale" if log else ""
    return f"Energy per inference (mJ{scale}) — lower is better"


def tradeoff_png(result: ReplayResult, path: Path) -> dict[str, str]:
    """Draw the trade-off with matplotlib into a PNG; returns where each label went."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    styles = approach_styles(a.approach for a in result.approaches)
    points = {a.approach: (_energy_mj(a), a.quality) for a in result.approaches}
    best = pareto_optimal(points)
    frontier = [(e * 1e3, q) for e, q in result.frontier]
    log = use_log_scale([*(p[0] for p in points.values()), *(p[0] for p in frontier)])

    fig = Figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if frontier:
        ax.plot(
            [p[0] for p in frontier],
            [p[1] for p in frontier],
            color=OKABE_ITO["black"],
            linestyle="--",
            linewidth=1.2,
            alpha=0.6,
            marker="o",
            markersize=4,
            markerfacecolor="white",
            label="oracle frontier",
            zorder=2,
        )
    handles: list[Any] = []
    for name in sorted(points, key=lambda n: styles[n].emphasis != "muted"):
        style = styles[name]
        muted = style.emphasis == "muted"
        ax.scatter(
            [points[name][0]],
            [points[name][1]],
            s=style.size,
            marker=style.marker,
            color=style.colour,
            edgecolors="white" if muted else "black",
            linewidths=0.6,
            alpha=0.75 if muted else 1.0,
            zorder=3 if muted else 4,
        )
    for name in points:
        style = styles[name]
        handles.append(
            Line2D(
                [],
                [],
                linestyle="",
                marker=style.marker,
                markersize=math.sqrt(style.size) * 0.75,
                markerfacecolor=style.colour,
                markeredgecolor="white" if style.emphasis == "muted" else "black",
                label=name,
            )
        )
    if log:
        ax.set_xscale("log")
    ax.margins(x=0.12, y=0.12)
    ax.grid(True, color="#DDDDDD", linewidth=0.6, zorder=0)
    ax.set_axisbelow(True)
    ax.set_xlabel(_energy_axis_title(log))
    ax.set_ylabel(quality_axis_title(result))
    ax.set_title(title(result, "Quality vs energy (top-left is better)"))
    frontier_handles, _ = ax.get_legend_handles_labels()
    fig.legend(
        handles=[*frontier_handles, *handles],
        loc="outside right upper",
        title="approach (bold: Pareto-optimal)",
        fontsize="small",
        title_fontsize="small",
        frameon=False,
    )

    # Lay out once so the axes have their final size, then place labels in pixels.
    canvas.draw()  # type: ignore[no-untyped-call]  # matplotlib leaves the canvas untyped
    renderer = canvas.get_renderer()  # type: ignore[no-untyped-call]
    to_px = ax.transData.transform
    obstacles: list[Box] = []
    for name, (x, y) in points.items():
        px, py = to_px((x, y))
        r = math.sqrt(styles[name].size) / 72 * DPI / 2 + 1
        obstacles.append((px - r, py - r, px + r, py + r))
    for (x0, y0), (x1, y1) in itertools.pairwise(frontier):
        (ax0, ay0), (ax1, ay1) = to_px((x0, y0)), to_px((x1, y1))
        steps = max(1, int(math.hypot(ax1 - ax0, ay1 - ay0) // 6))
        for i in range(steps + 1):
            px, py = ax0 + (ax1 - ax0) * i / steps, ay0 + (ay1 - ay0) * i / steps
            obstacles.append((px - 3, py - 3, px + 3, py + 3))
    anchors = []
    for name in _label_order(points, styles):
        style = styles[name]
        text_kw: dict[str, Any] = {
            "fontsize": 10 if style.emphasis == "highlight" else 9,
            "fontweight": "bold" if name in best else "normal",
            "color": MUTED_TEXT if style.emphasis == "muted" else "black",
            "zorder": 5,
        }
        anchors.append((name, points[name][0], points[name][1], text_kw))
    positions = _place_labels(ax, renderer, anchors, obstacles)
    for text in fig.legends[0].get_texts():
        if text.get_text() in best:
            text.set_fontweight("bold")
    fig.savefig(path, dpi=DPI)
    fig.clf()
    return positions


def tradeoff_figure(result: ReplayResult, positions: dict[str, str] | None = None) -> Any:
    """The trade-off as an interactive plotly figure (hover shows every number of the row).

    ``positions`` (from :func:`tradeoff_png`) puts each label where the PNG found room for it.
    """
    import plotly.graph_objects as go

    styles = approach_styles(a.approach for a in result.approaches)
    points = {a.approach: (_energy_mj(a), a.quality) for a in result.approaches}
    best = pareto_optimal(points)
    frontier = [(e * 1e3, q) for e, q in result.frontier]
    log = use_log_scale([*(p[0] for p in points.values()), *(p[0] for p in frontier)])
    positions = positions or {}

    fig = go.Figure()
    if frontier:
        fig.add_trace(
            go.Scatter(
                x=[p[0] for p in frontier],
                y=[p[1] for p in frontier],
                mode="lines+markers",
                name="oracle frontier",
                line={"color": OKABE_ITO["black"], "dash": "dash", "width": 1.2},
                marker={"size": 6, "color": "white", "line": {"color": "black", "width": 1}},
                opacity=0.7,
                hovertemplate="oracle frontier<br>%{x:.3~f} mJ<br>"
                + QUALITY_LABELS.get(result.quality_metric, result.quality_metric)
                + " %{y:.4f}<extra></extra>",
            )
        )
    for approach in sorted(result.approaches, key=lambda a: styles[a.approach].emphasis != "muted"):
        name = approach.approach
        style = styles[name]
        muted = style.emphasis == "muted"
        label = f"<b>{html.escape(name)}</b>" if name in best else html.escape(name)
        fig.add_trace(
            go.Scatter(
                x=[points[name][0]],
                y=[points[name][1]],
                mode="markers+text",
                name=name,
                text=[label],
                textposition=_TEXTPOSITION.get(positions.get(name, "right"), "middle right"),
                textfont={"color": MUTED_TEXT if muted else "black"},
                marker={
                    "symbol": style.symbol,
                    "size": style.plotly_size,
                    "color": style.colour,
                    "opacity": 0.75 if muted else 1.0,
                    "line": {"color": "white" if muted else "black", "width": 0.8},
                },
                hovertext=[
                    "<br>".join(
                        (
                            f"<b>{html.escape(name)}</b>"
                            + (" (Pareto-optimal)" if name in best else ""),
                            f"energy: {format_mj(approach.energy_j_per_inference)} per inference",
                            metrics_text(approach),
                            f"inference: {approach.inference_ms:.3g} ms",
                            f"switches {approach.switches}, retrains {approach.retrains}, "
                            f"reuses {approach.reuses}",
                            f"energy source: {html.escape(approach.energy_source)}",
                        )
                    )
                ],
                hoverinfo="text",
            )
        )
    fig.update_layout(
        title=title(result, "Quality vs energy (top-left is better)"),
        template="plotly_white",
        xaxis={"title": _energy_axis_title(log), "type": "log" if log else "linear"},
        yaxis={"title": quality_axis_title(result)},
        legend={"title": "approach"},
        width=None,
        height=600,
    )
    return fig
