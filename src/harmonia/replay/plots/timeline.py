"""The timeline plot: for every adaptive approach (and each service of a pipeline), which
model served each sample, where the stream drifted, and where actions happened, so the
numbers of the trade-off can be explained. A PNG (matplotlib) and an interactive figure
(plotly)."""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from harmonia.core.actions import ActionKind
from harmonia.replay.plots.styles import (
    ACTION_MARKERS,
    DPI,
    DRIFT_COLOUR,
    FIGSIZE,
    Style,
    approach_styles,
    is_baseline,
    title,
)
from harmonia.replay.results import ActionRecord, ApproachResult, ReplayResult

T = TypeVar("T")


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
