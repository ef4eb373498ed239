"""Stream generators: drifted streams drawn from a seed, one generator per reference system.

A generator lays out a stream as clean stretches and drift stretches. Everything is drawn
from the seed: how many stretches (none at all on some streams), their kinds, strengths,
positions and lengths, the clean stretches between them, whether a stretch is the return of
an earlier one (the same kind at the same strength: what ``reuse_version`` is for), and its
onset — sudden, or gradual over a ramp of samples.

* **traffic** cuts a stretch of the shipped clean PeMS test series (`TEST_NO_DRIFT`) and
  applies ``level`` (a shift by s standard deviations of the flow), ``scale`` (flow times
  s), ``noise`` (Gaussian, σ = s standard deviations), ``phase`` (the daily cycle shifted by
  the share s of a day) and ``pattern`` (the daily profile replaced, at strength s, by one
  with two peaks a day);
* **vision** writes a `Scenario` of the camera conditions (``dark``, ``fog``, ``noise``,
  ``blur``) at strengths drawn around those of the shipped scenario; a gradual onset is the
  scenario's ``ramp``.

The same seed gives the same stream, on any machine:

>>> a, b = generate("traffic", 7), generate("traffic", 7)
>>> a.drifts == b.drifts and bool((a.data == b.data).all())
True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

#: the drift kinds each generator produces
TRAFFIC_KINDS = ("level", "scale", "noise", "phase", "pattern")
VISION_KINDS = ("dark", "fog", "noise", "blur")
#: default length of a generated stream (20 decision windows of each system)
DEFAULT_SAMPLES = {"traffic": 4000, "vision": 1000}
#: samples per day of the PeMS series (5-minute flow)
DAY = 288


@dataclass(frozen=True)
class GeneratedDrift:
    """One drift stretch of a generated stream: ``kind`` at ``strength`` on samples
    ``[start, end)``, blended in over its first ``ramp`` samples (0: sudden), and
    ``recurrence`` the index of the earlier stretch it repeats (-1: a new drift)."""

    kind: str
    start: int
    end: int
    strength: float
    ramp: int = 0
    recurrence: int = -1

    @property
    def onset(self) -> str:
        return "gradual" if self.ramp > 0 else "sudden"


@dataclass(frozen=True)
class GeneratedStream:
    """A generated stream: its seed, its drift stretches, and the data the system's replay
    spec turns into a `Stream` (a flow series for traffic, a `Scenario` for vision)."""

    system: str
    seed: int
    samples: int
    drifts: tuple[GeneratedDrift, ...]
    data: Any

    @property
    def name(self) -> str:
        return f"{self.system}-{self.seed}"

    @property
    def regions(self) -> list[tuple[int, int]]:
        return [(d.start, d.end) for d in self.drifts]

    @property
    def kinds(self) -> list[str]:
        return [d.kind for d in self.drifts]

    def describe(self) -> dict[str, Any]:
        """What the stream is, for results files (the data itself is regenerated)."""
        return {
            "system": self.system,
            "seed": self.seed,
            "samples": self.samples,
            "drifts": [{**asdict(d), "onset": d.onset} for d in self.drifts],
        }


@dataclass(frozen=True)
class Layout:
    """How a generator places stretches, in samples: the clean lead-in before the first
    drift, a drift's length and the clean stretch after it (each ``(low, high)``)."""

    lead: tuple[int, int]
    length: tuple[int, int]
    gap: tuple[int, int]
    #: chance that a stream has no drift at all
    clean: float = 0.1
    #: chance that a stretch repeats an earlier one (kind and strength)
    recur: float = 0.35
    #: chance that an onset is gradual
    gradual: float = 0.5


def plan(
    rng: np.random.Generator,
    samples: int,
    kinds: tuple[str, ...],
    strength: Callable[[np.random.Generator, str], float],
    layout: Layout,
) -> tuple[GeneratedDrift, ...]:
    """Lay out drift stretches over ``samples`` samples (see the module notes)."""
    if rng.random() < layout.clean:
        return ()
    drifts: list[GeneratedDrift] = []
    position = int(rng.integers(layout.lead[0], layout.lead[1] + 1))
    while True:
        length = int(rng.integers(layout.length[0], layout.length[1] + 1))
        if position + length > samples:
            break
        if drifts and rng.random() < layout.recur:
            recurrence = int(rng.integers(0, len(drifts)))
            kind, value = drifts[recurrence].kind, drifts[recurrence].strength
        else:
            recurrence = -1
            kind = str(kinds[int(rng.integers(0, len(kinds)))])
            value = strength(rng, kind)
        ramp = (
            int(rng.integers(length // 4, length // 2 + 1)) if rng.random() < layout.gradual else 0
        )
        drifts.append(GeneratedDrift(kind, position, position + length, value, ramp, recurrence))
        position += length + int(rng.integers(layout.gap[0], layout.gap[1] + 1))
    return tuple(drifts)


def _onset(length: int, ramp: int) -> np.ndarray:
    """The weight of a drift over its stretch: 1 throughout, or a linear ramp to 1."""
    if ramp <= 0:
        return np.ones(length)
    return np.minimum(1.0, (np.arange(length) + 1.0) / ramp)


# -- traffic -----------------------------------------------------------------------------------
TRAFFIC_LAYOUT = Layout(lead=(400, 1000), length=(400, 1200), gap=(200, 1000))


def _traffic_strength(rng: np.random.Generator, kind: str) -> float:
    sign = 1.0 if rng.random() < 0.5 else -1.0
    if kind == "level":
        return round(sign * float(rng.uniform(0.5, 1.5)), 3)
    if kind == "scale":
        return round(float(rng.uniform(1.25, 1.8) if sign > 0 else rng.uniform(0.45, 0.8)), 3)
    if kind == "noise":
        return round(float(rng.uniform(0.15, 0.5)), 3)
    if kind == "phase":
        return round(float(rng.uniform(0.15, 0.5)), 3)
    return round(float(rng.uniform(0.5, 1.0)), 3)  # pattern


def daily_profile(series: np.ndarray, offset: int = 0) -> np.ndarray:
    """Mean flow by time of day (``DAY`` slots), for a series whose sample 0 falls in slot
    ``offset``."""
    slots = (np.arange(len(series)) + offset) % DAY
    return np.asarray([series[slots == s].mean() for s in range(DAY)])


def traffic_drift(
    base: np.ndarray, start: int, end: int, drift: GeneratedDrift, rng: np.random.Generator
) -> np.ndarray:
    """The values of ``base[start:end]`` under ``drift`` (``base`` is the whole clean series
    the stream is cut from; ``start`` indexes it; a phase shift reads earlier values)."""
    clean = base[start:end]
    sigma = float(base.std())
    s = drift.strength
    if drift.kind == "level":
        drifted = clean + s * sigma
    elif drift.kind == "scale":
        drifted = clean * s
    elif drift.kind == "noise":
        drifted = clean + rng.normal(0.0, s * sigma, len(clean))
    elif drift.kind == "phase":
        lag = round(s * DAY)
        drifted = base[start - lag : end - lag]
    elif drift.kind == "pattern":
        profile = daily_profile(base)
        slots = np.arange(start, end) % DAY
        doubled = profile[(2 * slots) % DAY]
        drifted = clean + s * (doubled - profile[slots])
    else:
        raise ValueError(f"unknown traffic drift {drift.kind!r}; known: {', '.join(TRAFFIC_KINDS)}")
    blended: np.ndarray = clean + _onset(len(clean), drift.ramp) * (drifted - clean)
    return blended


def generate_traffic(seed: int, samples: int | None = None) -> GeneratedStream:
    """A drifted flow series of ``samples`` forecasts (plus the look-back), from ``seed``."""
    from harmonia.systems.traffic.data import LOOKBACK, TEST_NO_DRIFT, load_flow, shipped

    count = samples or DEFAULT_SAMPLES["traffic"]
    rng = np.random.default_rng([seed, 1])
    base = load_flow(shipped(TEST_NO_DRIFT))
    length = count + LOOKBACK
    if length + DAY > len(base):
        raise ValueError(f"at most {len(base) - DAY - LOOKBACK} traffic samples, got {count}")
    offset = int(rng.integers(DAY, len(base) - length + 1))
    drifts = plan(rng, count, TRAFFIC_KINDS, _traffic_strength, TRAFFIC_LAYOUT)
    series = base[offset : offset + length].copy()
    for drift in drifts:
        # sample i forecasts series[i + LOOKBACK]: the drift covers those values
        a, b = drift.start + LOOKBACK, drift.end + LOOKBACK
        series[a:b] = traffic_drift(base, offset + a, offset + b, drift, rng)
    return GeneratedStream("traffic", seed, count, drifts, series)


# -- vision ------------------------------------------------------------------------------------
VISION_LAYOUT = Layout(lead=(100, 250), length=(100, 300), gap=(50, 250))
#: strengths drawn per condition, around those of the shipped scenario
VISION_STRENGTHS = {
    "dark": (0.5, 0.85),
    "fog": (0.4, 0.75),
    "noise": (0.2, 0.45),
    "blur": (0.8, 2.0),
}


def _vision_strength(rng: np.random.Generator, kind: str) -> float:
    low, high = VISION_STRENGTHS[kind]
    return round(float(rng.uniform(low, high)), 3)


def generate_vision(seed: int, samples: int | None = None) -> GeneratedStream:
    """A scenario of camera conditions over ``samples`` images, from ``seed``."""
    from harmonia.systems.vision.scenario import Drift, Scenario

    count = samples or DEFAULT_SAMPLES["vision"]
    rng = np.random.default_rng([seed, 2])
    drifts = plan(rng, count, VISION_KINDS, _vision_strength, VISION_LAYOUT)
    scenario = Scenario(
        count,
        tuple(Drift(d.kind, d.start, d.end, d.strength, d.ramp) for d in drifts),  # type: ignore[arg-type]
        seed=seed,
        source=f"generated vision stream, seed {seed}",
    )
    return GeneratedStream("vision", seed, count, drifts, scenario)


GENERATORS: dict[str, Callable[[int, int | None], GeneratedStream]] = {
    "traffic": generate_traffic,
    "vision": generate_vision,
}
KINDS = {"traffic": TRAFFIC_KINDS, "vision": VISION_KINDS}


def generate(system: str, seed: int, samples: int | None = None) -> GeneratedStream:
    """The stream of ``system`` generated from ``seed`` (``samples`` long, or the default)."""
    if system not in GENERATORS:
        raise ValueError(f"no stream generator for {system!r}; known: {', '.join(GENERATORS)}")
    return GENERATORS[system](seed, samples)


def replay_stream(generated: GeneratedStream) -> Any:
    """The `Stream` the lab replays, with the generated drift regions and kinds."""
    from dataclasses import replace

    from harmonia.replay.systems import spec_for

    stream = spec_for(generated.system).stream(generated.data)
    return replace(
        stream,
        source=f"generated:{generated.name}",
        regions=generated.regions,
        conditions=generated.kinds,
    )
