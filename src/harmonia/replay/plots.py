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

import dataclasses
import html
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from harmonia.core.actions import ActionKind
from harmonia.core.units import format_mj
from harmonia.replay.results import ActionRecord, ApproachResult, ReplayResult

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.backend_bases import RendererBase

T = TypeVar("T")

#: size of every PNG, in inches, and its resolution: 1200 × 720 pixels
FIGSIZE: tuple[float, float] = (10.0, 6.0)
DPI = 120

#: Okabe–Ito: distinguishable under the common colour-vision deficiencies
OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}
#: approaches that are neither highlighted nor baselines take these, in order (yellow is the
#: faintest on white, so it comes last)
CYCLE = ("orange", "sky_blue", "bluish_green", "reddish_purple", "yellow")
MUTED = "#999999"
MUTED_TEXT = "#666666"
#: drift shading is neutral grey, so it never reads as one of the approaches
DRIFT_COLOUR = "#BBBBBB"
#: the approaches a reader looks for first
HIGHLIGHT = ("harmonia", "harmone", "oracle")
BASELINE_PREFIX = "single-"


@dataclass(frozen=True)
class ActionMarker:
    """How the timelines draw one kind of action."""

    label: str
    #: matplotlib's marker; None where the static plot draws none (a switch is a step there)
    static: str | None
    #: plotly's marker symbol; None where the interactive plot draws none
    interactive: str | None
    #: drawn hollow (white) rather than solid
    hollow: bool = False


#: every kind of action (`ActionKind`) and how it is drawn, in drawing order (switches over
#: the rest); ``none`` changes nothing, so there is nothing to draw
ACTION_MARKERS: dict[ActionKind, ActionMarker] = {
    ActionKind.RETRAIN: ActionMarker("retrain", "^", "triangle-up", hollow=True),
    ActionKind.REUSE_VERSION: ActionMarker("reuse version", "s", "square"),
    ActionKind.SWITCH_MODEL: ActionMarker("switch", None, "circle"),
    # a contract's remedies: live only, never decided in a replay
    ActionKind.ALERT: ActionMarker("alert", None, None),
    ActionKind.DEGRADE: ActionMarker("degrade", None, None),
    ActionKind.REROUTE: ActionMarker("reroute", None, None),
    ActionKind.REJECT: ActionMarker("reject", None, None),
    ActionKind.SCALE: ActionMarker("scale", None, None),
    ActionKind.MIGRATE: ActionMarker("migrate", None, None),
    ActionKind.NONE: ActionMarker("none", None, None),
}

Emphasis = Literal["highlight", "normal", "muted"]


@dataclass(frozen=True)
class Style:
    """How one approach is drawn, identical in both plots so a colour means one approach."""

    colour: str
    marker: str  # matplotlib marker
    symbol: str  # plotly marker symbol
    size: float  # matplotlib scatter area, points²
    emphasis: Emphasis

    @property
    def plotly_size(self) -> float:
        """Plotly sizes are diameters in pixels; matplotlib's are areas in points²."""
        return round(math.sqrt(self.size) * 1.1, 1)


_HIGHLIGHT_STYLES = {
    "harmonia": Style(OKABE_ITO["vermillion"], "*", "star", 420.0, "highlight"),
    "harmone": Style(OKABE_ITO["blue"], "D", "diamond", 150.0, "highlight"),
    "oracle": Style(OKABE_ITO["black"], "X", "x", 190.0, "highlight"),
}


def is_baseline(name: str) -> bool:
    """Whether an approach is a single-model baseline, which never adapts and so has no timeline.

    >>> is_baseline("single-lstm"), is_baseline("switch")
    (True, False)
    """
    return name.startswith(BASELINE_PREFIX)


def approach_styles(names: Iterable[str]) -> dict[str, Style]:
    """Give every approach a style, assigned once so both plots agree.

    The three approaches the comparison is about get fixed, distinct styles; baselines are grey so
    they recede; the rest take the Okabe–Ito colours in turn.

    >>> styles = approach_styles(["single-linear", "switch", "harmonia", "other"])
    >>> styles["harmonia"].colour, styles["harmonia"].emphasis
    ('#D55E00', 'highlight')
    >>> styles["single-linear"].emphasis, styles["switch"].colour, styles["other"].colour
    ('muted', '#E69F00', '#56B4E9')
    """
    styles: dict[str, Style] = {}
    cycled = 0
    for name in names:
        if name in _HIGHLIGHT_STYLES:
            styles[name] = _HIGHLIGHT_STYLES[name]
        elif is_baseline(name):
            styles[name] = Style(MUTED, "s", "square", 60.0, "muted")
        else:
            colour = OKABE_ITO[CYCLE[cycled % len(CYCLE)]]
            styles[name] = Style(colour, "o", "circle", 110.0, "normal")
            cycled += 1
    return styles


def change_points(values: Sequence[T]) -> list[tuple[int, T]]:
    """Compress a per-sample series into the indices where it changes, plus the last index.

    That is all a step line needs, and it keeps a long stream's plot small (a 100 000-sample
    replay with a dozen switches becomes a dozen points).

    >>> change_points(["lstm", "lstm", "svm", "svm", "svm", "lstm"])
    [(0, 'lstm'), (2, 'svm'), (5, 'lstm')]
    >>> change_points(["a", "a", "a"])
    [(0, 'a'), (2, 'a')]
    >>> change_points(["a"]), change_points([])
    ([(0, 'a')], [])
    """
    points: list[tuple[int, T]] = []
    for index, value in enumerate(values):
        if not points or value != points[-1][1]:
            points.append((index, value))
    if points and points[-1][0] != len(values) - 1:
        points.append((len(values) - 1, values[-1]))
    return points


def model_positions(result: ReplayResult) -> dict[str, int]:
    """Map each model to its row on the timeline's y axis, cheapest at the bottom.

    Models that a timeline mentions but ``result.models`` does not are appended above, so a
    mismatch shows in the plot instead of failing it.
    """
    positions = {model: i for i, model in enumerate(result.models)}
    for approach in result.approaches:
        for model in approach.timeline.models:
            positions.setdefault(model, len(positions))
        for action in approach.timeline.actions:
            if action.model is not None:
                positions.setdefault(action.model, len(positions))
    return positions


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


def title(result: ReplayResult, what: str) -> str:
    """One title format for every plot, naming the system, menu and stream length.

    >>> from harmonia.replay.results import ReplayResult
    >>> title(ReplayResult("traffic", "lr-svm-lstm", 0, "d.csv", 500, [], 50, []), "Timeline")
    'Timeline — traffic, menu lr-svm-lstm, 500 samples'
    """
    return f"{what} — {result.system}, menu {result.menu}, {result.samples:,} samples"


def hover_text(action: ActionRecord, model: str) -> str:
    """The hover label of an action: what was done, to which model and version, and why.

    >>> print(hover_text(ActionRecord(120, "retrain", None, 3, "r2 < 0.8", "drift"), "lstm"))
    retrain at sample 120<br>model: lstm, version: 3<br>reason: r2 &lt; 0.8<br>trigger: drift
    """
    version = "–" if action.version is None else str(action.version)
    return "<br>".join(
        (
            f"{html.escape(action.kind, quote=False)} at sample {action.index}",
            f"model: {html.escape(model, quote=False)}, version: {version}",
            f"reason: {html.escape(action.reason, quote=False)}",
            f"trigger: {html.escape(action.trigger, quote=False)}",
        )
    )


def action_model(action: ActionRecord, served: Sequence[str]) -> str:
    """The model an action concerns: its own, else the one serving at its index.

    >>> action_model(ActionRecord(1, "retrain", None, 2, "r", "t"), ["svm", "lstm"])
    'lstm'
    """
    if action.model is not None:
        return action.model
    if served:
        return served[min(max(action.index, 0), len(served) - 1)]
    return "?"


def service_row(approach: str, service: str) -> str:
    """The timeline row of one adapting service of a pipeline's approach.

    >>> service_row("presets", "fast")
    'presets · fast'
    """
    return f"{approach} · {service}"


def timeline_approaches(result: ReplayResult) -> list[ApproachResult]:
    """The approaches with a timeline worth plotting: every one but the single-model baselines;
    a pipeline's approach gives one row per adapting service (`service_row`)."""
    rows: list[ApproachResult] = []
    for approach in result.approaches:
        if is_baseline(approach.approach):
            continue
        if not approach.services:
            rows.append(approach)
            continue
        rows.extend(
            dataclasses.replace(
                approach,
                approach=service_row(approach.approach, service),
                timeline=done.timeline,
                services={},
            )
            for service, done in approach.services.items()
        )
    return rows


@dataclass(frozen=True)
class DriftShading:
    """Where the timelines shade drift, and what the legend calls it."""

    regions: list[tuple[int, int]]
    label: str


def drift_shading(result: ReplayResult) -> DriftShading:
    """The stream's known drift (the shipped streams know theirs); for a stream that does
    not know it (a user's own CSV), the windows where an approach's drift detector fired,
    so a user's replay is not left without any: each window that closed with an action
    triggered by drift, merged where they touch.

    >>> from harmonia.replay.results import Timeline
    >>> fired = ActionRecord(399, "retrain", None, 2, "kl 0.9", "harmone: drift.kl above")
    >>> row = ApproachResult("harmone", 0.0, {}, 0.0, 0, 1, 0, "estimate", 0.0)
    >>> row.timeline = Timeline(actions=[fired])
    >>> result = ReplayResult("traffic", "harmonia", 0, "mine.csv", 600, [], 200, [row])
    >>> drift_shading(result)
    DriftShading(regions=[(200, 400)], label='drift detected')
    """
    if result.drift_regions:
        return DriftShading(list(result.drift_regions), "drift")
    windows = sorted(
        (max(0, action.index + 1 - result.window), action.index + 1)
        for approach in result.approaches
        for timeline in (approach.timeline, *(s.timeline for s in approach.services.values()))
        for action in timeline.actions
        if "drift" in action.trigger
    )
    merged: list[tuple[int, int]] = []
    for start, end in windows:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return DriftShading(merged, "drift detected")


def timeline_styles(result: ReplayResult) -> dict[str, Style]:
    """`approach_styles` of the result, and each pipeline service's row in its approach's."""
    styles = approach_styles(a.approach for a in result.approaches)
    for approach in result.approaches:
        for service in approach.services:
            styles[service_row(approach.approach, service)] = styles[approach.approach]
    return styles


def timeline_figsize(rows: int) -> tuple[float, float]:
    """Give each timeline row enough height for its model names, never less than ``FIGSIZE``.

    >>> timeline_figsize(3), timeline_figsize(6)
    ((10.0, 6.0), (10.0, 9.8))
    """
    return FIGSIZE[0], max(FIGSIZE[1], round(0.8 + 1.5 * rows, 2))


# -- label placement ---------------------------------------------------------------------------

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


# -- trade-off ---------------------------------------------------------------------------------


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


# -- timeline ----------------------------------------------------------------------------------


def timeline_png(result: ReplayResult, path: Path) -> None:
    """Draw the model in service per adaptive approach, one row each, into a PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    approaches = timeline_approaches(result)
    styles = timeline_styles(result)
    positions = model_positions(result)
    names = sorted(positions, key=positions.__getitem__)
    rows = max(len(approaches), 1)
    drift = drift_shading(result)

    fig = Figure(figsize=timeline_figsize(rows), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]
    used_kinds: set[ActionKind] = set()
    for ax, approach in zip(axes, approaches, strict=False):
        name = approach.approach
        colour = styles[name].colour
        for start, end in drift.regions:
            ax.axvspan(start, end, color=DRIFT_COLOUR, alpha=0.35, linewidth=0, zorder=0)
        served = approach.timeline.models
        steps = change_points(served)
        if steps:
            ax.plot(
                [i for i, _ in steps],
                [positions[m] for _, m in steps],
                drawstyle="steps-post",
                color=colour,
                linewidth=2,
                zorder=2,
            )
        else:
            ax.text(0.5, 0.5, "no timeline recorded", transform=ax.transAxes, ha="center")
        for kind, look in ACTION_MARKERS.items():
            hits = [a for a in approach.timeline.actions if a.kind == kind]
            if look.static is None or not hits:
                continue
            used_kinds.add(kind)
            ax.scatter(
                [a.index for a in hits],
                [positions[action_model(a, served)] for a in hits],
                marker=look.static,
                s=60,
                facecolors="white" if look.hollow else "black",
                edgecolors="black",
                linewidths=1,
                zorder=3,
            )
        ax.set_yticks(range(len(names)), names, fontsize="small")
        ax.set_ylim(-0.6, len(names) - 0.4)
        ax.set_title(name, loc="left", fontsize="medium", color=colour, fontweight="bold")
        ax.grid(True, axis="y", color="#EEEEEE", linewidth=0.6)
        ax.set_axisbelow(True)
    if not approaches:
        axes[0].text(0.5, 0.5, "no adaptive approach", transform=axes[0].transAxes, ha="center")
    axes[0].set_xlim(0, max(result.samples - 1, 1))
    axes[-1].set_xlabel("sample index")
    fig.supylabel("model in service (cheapest at the bottom)", fontsize="medium")
    fig.suptitle(title(result, "Model in service"))
    handles: list[Any] = []
    if drift.regions:
        handles.append(Patch(color=DRIFT_COLOUR, alpha=0.35, label=drift.label))
    for kind, look in ACTION_MARKERS.items():
        if kind in used_kinds:
            handles.append(
                Line2D(
                    [],
                    [],
                    linestyle="",
                    marker=look.static,
                    markersize=8,
                    markerfacecolor="white" if look.hollow else "black",
                    markeredgecolor="black",
                    label=look.label,
                )
            )
    handles.append(Line2D([], [], color="#444444", drawstyle="steps-post", label="model switch"))
    fig.legend(handles=handles, loc="outside right upper", fontsize="small", frameon=False)
    fig.savefig(path, dpi=DPI)
    fig.clf()


def timeline_figure(result: ReplayResult) -> Any:
    """The timeline as an interactive plotly figure: hover on an action says what and why."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    approaches = timeline_approaches(result)
    styles = timeline_styles(result)
    positions = model_positions(result)
    names = sorted(positions, key=positions.__getitem__)
    rows = max(len(approaches), 1)
    low, high = -0.6, len(names) - 0.4
    drift = drift_shading(result)

    fig = make_subplots(
        rows=rows,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=min(0.08, 0.3 / rows),
        subplot_titles=[a.approach for a in approaches] or ["no adaptive approach"],
    )
    shown: set[str] = set()

    def first(group: str) -> bool:
        """Show each legend entry once, however many rows repeat it."""
        new = group not in shown
        shown.add(group)
        return new

    for row, approach in enumerate(approaches, start=1):
        name = approach.approach
        colour = styles[name].colour
        for start, end in drift.regions:
            fig.add_trace(
                go.Scatter(
                    x=[start, start, end, end, start],
                    y=[low, high, high, low, low],
                    mode="lines",
                    fill="toself",
                    fillcolor=DRIFT_COLOUR,
                    opacity=0.35,
                    line={"width": 0},
                    name=drift.label,
                    legendgroup="drift",
                    showlegend=first("drift"),
                    hoveron="fills",
                    hoverinfo="text",
                    text=f"{drift.label}, samples {start}–{end - 1}",
                ),
                row=row,
                col=1,
            )
        served = approach.timeline.models
        versions = approach.timeline.versions
        keyed = [
            (model, versions[i] if i < len(versions) else None) for i, model in enumerate(served)
        ]
        steps = change_points(keyed)
        fig.add_trace(
            go.Scatter(
                x=[i for i, _ in steps],
                y=[positions[m] for _, (m, _) in steps],
                mode="lines",
                line={"color": colour, "width": 2, "shape": "hv"},
                name=name,
                hovertext=[
                    f"{html.escape(name)}: {html.escape(m)} v{'–' if v is None else v} "
                    f"from sample {i}"
                    for i, (m, v) in steps
                ],
                hoverinfo="text",
            ),
            row=row,
            col=1,
        )
        for kind, look in ACTION_MARKERS.items():
            hits = [a for a in approach.timeline.actions if a.kind == kind]
            if look.interactive is None or not hits:
                continue
            models = [action_model(a, served) for a in hits]
            switch = kind is ActionKind.SWITCH_MODEL
            fig.add_trace(
                go.Scatter(
                    x=[a.index for a in hits],
                    y=[positions[m] for m in models],
                    mode="markers",
                    name=look.label,
                    legendgroup=kind.value,
                    showlegend=first(kind.value),
                    marker={
                        "symbol": look.interactive,
                        "size": 6 if switch else 10,
                        "color": colour if switch else ("white" if look.hollow else "black"),
                        "line": {"color": "black", "width": 1},
                    },
                    hovertext=[hover_text(a, m) for a, m in zip(hits, models, strict=True)],
                    hoverinfo="text",
                ),
                row=row,
                col=1,
            )
        fig.update_yaxes(
            tickvals=list(range(len(names))),
            ticktext=names,
            range=[low, high],
            row=row,
            col=1,
        )
    fig.update_xaxes(range=[0, max(result.samples - 1, 1)])
    fig.update_xaxes(title_text="sample index", row=rows, col=1)
    fig.update_layout(
        title=title(result, "Model in service"),
        template="plotly_white",
        height=180 * rows + 160,
        hovermode="closest",
    )
    return fig


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
