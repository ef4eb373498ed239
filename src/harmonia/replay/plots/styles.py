"""What both replay plots share, so that a colour and a marker mean one approach in each:
the Okabe–Ito palette, each approach's `Style`, how each kind of action is drawn, the size
of a figure and its title."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from harmonia.core.actions import ActionKind
from harmonia.replay.results import ReplayResult

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


def title(result: ReplayResult, what: str) -> str:
    """One title format for every plot, naming the system, menu and stream length.

    >>> from harmonia.replay.results import ReplayResult
    >>> title(ReplayResult("traffic", "lr-svm-lstm", 0, "d.csv", 500, [], 50, []), "Timeline")
    'Timeline — traffic, menu lr-svm-lstm, 500 samples'
    """
    return f"{what} — {result.system}, menu {result.menu}, {result.samples:,} samples"
