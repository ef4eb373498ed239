"""Camera drift: the four conditions, their transforms, and the scenario file that places them.

A scenario is a YAML (or JSON) file that says which drift, where and how strong::

    samples: 3000          # length of the stream
    seed: 0                # the stream's order and the noise
    drifts:
      - {condition: dark, start: 400, end: 800, strength: 0.75}
      - {condition: fog,  start: 1100, end: 1500, strength: 0.6}

``start``/``end`` are sample indices, ``[start, end)``; stretches must not overlap. An
optional ``ramp`` (samples, default 0: a sudden onset) makes the onset gradual: the drift
blends in linearly over the stretch's first ``ramp`` images. The strength means, per
condition (images in [0, 1]):

* ``dark``: the light falls by that share: ``x · (1 − s)``, s in (0, 1);
* ``fog``: a bright haze covers that share: ``x · (1 − s) + 0.75 · s``, s in (0, 1);
* ``noise``: Gaussian sensor noise of standard deviation s, clipped: s in (0, 1];
* ``blur``: a Gaussian blur (defocus, motion) of standard deviation s pixels: s in (0, 5].

A bad file is a `ScenarioError` that names the field, e.g. ``drifts[1].strength``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import yaml

from harmonia.core.errors import HarmoniaError
from harmonia.systems.vision.data import Images, Labels, clean_stream

Condition = Literal["dark", "fog", "noise", "blur"]
CONDITIONS: tuple[Condition, ...] = get_args(Condition)
#: the haze that fog blends in
FOG_LEVEL = 0.75
#: (low, high, high inclusive) of each condition's strength
STRENGTH_RANGE: dict[str, tuple[float, float, bool]] = {
    "dark": (0.0, 1.0, False),
    "fog": (0.0, 1.0, False),
    "noise": (0.0, 1.0, True),
    "blur": (0.0, 5.0, True),
}
DEFAULT = "default.yaml"


class ScenarioError(HarmoniaError, ValueError):
    """A scenario file cannot be used; the message names the field and the reason."""


def darken(images: Images, strength: float, rng: np.random.Generator | None = None) -> Images:
    """Less light: every pixel scaled by ``1 − strength``."""
    return (images * (1.0 - strength)).astype(np.float32)


def fog(images: Images, strength: float, rng: np.random.Generator | None = None) -> Images:
    """Haze: contrast falls by ``strength`` and the image brightens towards ``FOG_LEVEL``."""
    return (images * (1.0 - strength) + FOG_LEVEL * strength).astype(np.float32)


def noise(images: Images, strength: float, rng: np.random.Generator | None = None) -> Images:
    """Sensor noise: Gaussian, standard deviation ``strength``, clipped to [0, 1]."""
    generator = rng if rng is not None else np.random.default_rng(0)
    noisy = images + generator.normal(0.0, strength, images.shape)
    return np.clip(noisy, 0.0, 1.0).astype(np.float32)


def blur(images: Images, strength: float, rng: np.random.Generator | None = None) -> Images:
    """Defocus: a Gaussian blur of ``strength`` pixels within each image."""
    from scipy.ndimage import gaussian_filter

    blurred: Images = gaussian_filter(images, sigma=(0.0, strength, strength), mode="constant")
    return blurred.astype(np.float32)


Transform = Callable[[Images, float, "np.random.Generator | None"], Images]
TRANSFORMS: dict[str, Transform] = {"dark": darken, "fog": fog, "noise": noise, "blur": blur}


def apply(
    condition: str, images: Images, strength: float, rng: np.random.Generator | None = None
) -> Images:
    """``images`` under ``condition`` at ``strength`` (see the module notes).

    >>> x = np.full((1, 2, 2), 0.8, dtype=np.float32)
    >>> round(float(apply("dark", x, 0.5).max()), 3), round(float(apply("fog", x, 0.5).max()), 3)
    (0.4, 0.775)
    """
    if condition not in TRANSFORMS:
        raise ValueError(f"unknown condition {condition!r}; known: {', '.join(CONDITIONS)}")
    return TRANSFORMS[condition](images, strength, rng)


@dataclass(frozen=True)
class Drift:
    """One stretch of drift: ``condition`` at ``strength`` on samples ``[start, end)``,
    blended in over its first ``ramp`` samples (0: a sudden onset)."""

    condition: Condition
    start: int
    end: int
    strength: float
    ramp: int = 0


@dataclass(frozen=True)
class Scenario:
    """Which drift, where and how strong, on a stream of ``samples`` images."""

    samples: int
    drifts: tuple[Drift, ...] = ()
    seed: int = 0
    source: str = field(default="", compare=False)

    def regions(self) -> list[tuple[int, int]]:
        """[start, end) of every drift stretch, in order (what the plots shade)."""
        return [(d.start, d.end) for d in self.drifts]

    def condition_at(self, index: int) -> str:
        """The condition of sample ``index``: a drift's, or ``"clean"``."""
        for drift in self.drifts:
            if drift.start <= index < drift.end:
                return drift.condition
        return "clean"

    def shortened(self, samples: int) -> Scenario:
        """The same scenario cut to its first ``samples`` images (short replays, tests)."""
        kept = tuple(
            Drift(d.condition, d.start, min(d.end, samples), d.strength, d.ramp)
            for d in self.drifts
            if d.start < samples
        )
        return Scenario(samples, kept, self.seed, self.source)

    def stream(self) -> tuple[Images, Labels]:
        """The stream's images, drift applied, and their labels."""
        images, labels = clean_stream(self.samples, self.seed)
        rng = np.random.default_rng(self.seed + 2)
        for drift in self.drifts:
            part = images[drift.start : drift.end]
            drifted = apply(drift.condition, part, drift.strength, rng)
            if drift.ramp > 0:  # a gradual onset: blend the drifted images in
                weight = np.minimum(1.0, (np.arange(len(part)) + 1.0) / drift.ramp)
                drifted = (part + weight[:, None, None] * (drifted - part)).astype(np.float32)
            images[drift.start : drift.end] = drifted
        return images, labels


def _fail(path: str, reason: str, source: str) -> ScenarioError:
    where = f"{source}: " if source else ""
    return ScenarioError(f"{where}{path}: {reason}")


def _integer(value: Any, path: str, source: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(path, f"must be an integer, got {value!r}", source)
    if value < minimum:
        raise _fail(path, f"must be >= {minimum}, got {value}", source)
    return value


def parse_scenario(data: Any, source: str = "") -> Scenario:
    """Validate a scenario document (already parsed) or raise `ScenarioError` naming the field.

    >>> parse_scenario({"samples": 10, "drifts": [{"condition": "fog", "start": 2, "end": 5,
    ...     "strength": 0.5}]}).drifts[0].condition
    'fog'
    >>> parse_scenario({"samples": 10, "drifts": [{"condition": "rain", "start": 0, "end": 1,
    ...     "strength": 0.5}]})
    Traceback (most recent call last):
    ...
    harmonia.systems.vision.scenario.ScenarioError: drifts[0].condition: unknown condition 'rain'; known: dark, fog, noise, blur
    """  # noqa: E501
    if not isinstance(data, dict):
        raise _fail("(top level)", "a scenario must be a mapping of fields", source)
    unknown = sorted(set(data) - {"samples", "seed", "drifts"})
    if unknown:
        raise _fail(unknown[0], "unknown field; known: samples, seed, drifts", source)
    if "samples" not in data:
        raise _fail("samples", "missing: the length of the stream", source)
    samples = _integer(data["samples"], "samples", source, 1)
    seed = _integer(data.get("seed", 0), "seed", source, 0)
    items = data.get("drifts", [])
    if not isinstance(items, list):
        raise _fail("drifts", "must be a list of drift stretches", source)
    drifts: list[Drift] = []
    for i, item in enumerate(items):
        at = f"drifts[{i}]"
        if not isinstance(item, dict):
            raise _fail(at, "must be a mapping with condition, start, end, strength", source)
        extra = sorted(set(item) - {"condition", "start", "end", "strength", "ramp"})
        if extra:
            raise _fail(f"{at}.{extra[0]}", "unknown field", source)
        for name in ("condition", "start", "end", "strength"):
            if name not in item:
                raise _fail(f"{at}.{name}", "missing", source)
        condition = item["condition"]
        if condition not in CONDITIONS:
            raise _fail(
                f"{at}.condition",
                f"unknown condition {condition!r}; known: {', '.join(CONDITIONS)}",
                source,
            )
        start = _integer(item["start"], f"{at}.start", source, 0)
        end = _integer(item["end"], f"{at}.end", source, 1)
        if end <= start:
            raise _fail(f"{at}.end", f"must be greater than start ({start}), got {end}", source)
        if end > samples:
            raise _fail(f"{at}.end", f"beyond the stream's {samples} samples, got {end}", source)
        strength = item["strength"]
        if isinstance(strength, bool) or not isinstance(strength, int | float):
            raise _fail(f"{at}.strength", f"must be a number, got {strength!r}", source)
        low, high, inclusive = STRENGTH_RANGE[condition]
        if not (low < strength < high or (inclusive and strength == high)):
            bracket = "]" if inclusive else ")"
            raise _fail(
                f"{at}.strength",
                f"{condition} strength must be in ({low:g}, {high:g}{bracket}, got {strength}",
                source,
            )
        if drifts and start < drifts[-1].end:
            raise _fail(
                f"{at}.start",
                f"overlaps or precedes the previous stretch (ends at {drifts[-1].end})",
                source,
            )
        ramp = _integer(item.get("ramp", 0), f"{at}.ramp", source, 0)
        drifts.append(Drift(condition, start, end, float(strength), ramp))
    return Scenario(samples, tuple(drifts), seed, source)


def default_scenario_path() -> Path:
    """The scenario shipped with the package."""
    return Path(str(resources.files("harmonia.systems.vision") / "scenarios" / DEFAULT))


def load_scenario(path: str | Path | None = None) -> Scenario:
    """Read a scenario file (YAML or JSON); the shipped default when ``path`` is None."""
    file = Path(path) if path is not None else default_scenario_path()
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as error:
        raise ScenarioError(f"{file}: cannot read ({error.strerror or error})") from None
    try:
        data = json.loads(text) if file.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise ScenarioError(f"{file}: not valid YAML/JSON ({error})") from None
    return parse_scenario(data, str(file))
