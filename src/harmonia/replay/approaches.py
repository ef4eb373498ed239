"""The approaches the replay lab compares, each an ordinary policy, for each reference system.

HarmonE's nine baselines (its published evaluation), ``harmonia`` (ours) and ``oracle`` (the
hindsight limit, computed by `harmonia.replay.oracle` rather than run by the engine).
Within one system every approach shares the objective, the window and the drift settings,
so that only the strategy differs; what differs between systems (models, window, quality
term, thresholds) is in its `Settings`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harmonia.core.policy import Policy, parse_policy
from harmonia.systems.traffic import SYSTEM as TRAFFIC_SYSTEM
from harmonia.systems.vision import SYSTEM as VISION_SYSTEM

ORACLE = "oracle"


@dataclass(frozen=True)
class Settings:
    """What the approaches of one system share: models (cheapest first), decision window,
    objective, the quality target of ``switch`` and the options of ``harmonia``."""

    system: str
    models: list[str]
    window: int
    #: periodic retraining every so many windows (the ``+retrain`` baselines)
    retrain_every: int
    #: ``switch`` switches when the window's quality falls below this
    quality_target: float
    objective: dict[str, Any] = field(default_factory=dict)
    harmonia_options: dict[str, Any] = field(default_factory=dict)
    harmonia_drift: dict[str, Any] = field(default_factory=dict)
    #: samples per ``harmonia`` decision, where it decides more often than ``window`` (which
    #: stays the window every approach is scored over, the oracle's among them)
    harmonia_window: int | None = None

    @property
    def baselines(self) -> list[str]:
        singles = [f"single-{m}" for m in self.models]
        return [
            "harmone",
            "switch",
            "switch+retrain",
            *singles,
            *(f"{s}+retrain" for s in singles),
        ]

    @property
    def approaches(self) -> list[str]:
        return [*self.baselines, "harmonia", ORACLE]


TRAFFIC = Settings(
    system=TRAFFIC_SYSTEM.name,
    models=list(TRAFFIC_SYSTEM.models),
    window=200,
    # HarmonE's periodic retraining made 4 adaptations over the 14,501-sample test stream
    retrain_every=15,
    quality_target=0.78,
    # Ten bins, not HarmonE's fifty: a 200-sample window fills fifty bins too thinly, and on
    # this stream clean windows then reach KL 0.8 against the training data. A remedy only
    # below a score of 0.7 (not 0.78, the quality target of `switch`): on the generated
    # streams of suite seed 2 (12 streams; the evaluation uses seed 1), most retrains
    # between 0.7 and 0.78 won nothing back and left `single-linear` dominating (4 streams
    # of 12 at 0.78, 1 at 0.7; the same from 0.6 to 0.7). A drifted low window retrains only
    # when the next is low too (drift_patience 2): the jump at a phase drift's onset scores
    # one window at R² 0.3 between windows at 0.9, and a retrain on it won nothing (on suite
    # seed 2, 30 streams, 0 streams dominated at 2 and at 3; the evaluation on seed 1 went
    # from 6 of 30 dominated to 1). A retrained version promises what it read on held-out
    # recent data, and that promise counts only where its training data resembles the
    # window (promise_in_context): a version fitted to noise serves while the noise lasts
    # and gives way to version 1 after it (stop 30, suite seed 3: 1 of 30 dominated,
    # `traffic-30029`, to 0; seed 2 stayed at 0).
    harmonia_options={
        "min_score": 0.7,
        "drift_threshold": 0.6,
        "reuse_threshold": 0.6,
        "drift_patience": 2,
        "promise_in_context": True,
    },
    harmonia_drift={"detectors": {"kl": {"bins": 10}}},
)

VISION = Settings(
    system=VISION_SYSTEM.name,
    models=list(VISION_SYSTEM.models),
    window=50,
    retrain_every=15,
    quality_target=0.9,
    # Labels arrive with the replayed images, so quality is accuracy (confidence misleads
    # under darkness: a CNN stays sure of itself while it gets almost every digit wrong).
    # The energy range spans the large model's cost per inference (about 6 mJ here).
    objective={
        "quality": "accuracy",
        "weights": {"quality": 0.95, "energy": 0.05},
        "energy_range_j": [0.0, 0.01],
    },
    # harmonia, chosen on the generated streams of suite seeds 2 and 3 (60 streams; the
    # evaluation uses seed 1); docs/replay.md has what each setting changed there.
    # - It decides every 25 images (scored, like every approach, over windows of 50): a drift's
    #   onset costs half a window of answers from a model that cannot read the new data. The
    #   horizons below are in these windows: retrains 150 images apart at least, a fine-tune
    #   priced over 500 images (half a generated stream: a drift lasts 100 to 300; over
    #   1,000, fine-tunes of the large CNN that won little back left it dominated), evidence
    #   kept for the whole stream.
    # - A remedy only below 0.85: the small CNN reads dark images at 0.85-0.9 and is the best
    #   there is for them; at 0.9 it kept looking for better.
    # - The best promise serves (tolerance 0): the score already prices energy, and with
    #   the stress test read on luminance and sharpness the model in service changes as
    #   soon as the images do. 0.015 (stop 25) suited models where the small CNN came close
    #   to the best on clean images; on models where the large CNN leads it by 1.4 points,
    #   it left 18 of 60 tuning streams dominated, against 1 (stop 26).
    # - Versions are tuned for conditions, so a stored promise counts only where the version's
    #   training data resembles the window (promise_in_context), and reuse asks for a close
    #   match (0.3): mean luminance tells noise from fog less sharply than dark from fog.
    # - A score on drifted data counts wherever the data looks alike: two windows of 25 images
    #   under one condition lie 0.1 to 3 apart by KL on luminance, under two about 12 (3).
    # - Models differ in what they withstand (the stress test stored with each version says
    #   how), so a drifted window whose score fell first tries a model not yet seen on such
    #   data (explore) before any retrain.
    # - Labels come with the images, but the images tell first: every image is read against
    #   the stress test (lookahead 1), and where it looks like a condition the serving model
    #   reads badly and another well (dark), that one serves from the next image, not at the
    #   window's end. Every 5 images (stop 26) left 5 to 9 dark images to the medium CNN at
    #   each onset, enough for the small one to dominate a stream with two dark stretches;
    #   on the shipped weights and tuning seeds 2 + 3, 10 streams of 60 dominated at 5,
    #   5 at 1.
    # - Luminance cannot see noise or blur, sharpness can (drift features): the stress
    #   test is read on both. Three low windows in a row may retrain (patience 3; at 2 the
    #   small CNN's chance low windows retrained it on a clean stream).
    # - An accuracy on 25 images moves by several points from window to window: another
    #   model's score counts as better only 0.05 above the window's, and what a retrain can
    #   win back only beyond 0.05 (stop 29, tuning seeds 2 + 3: 7 of 60 dominated either way,
    #   5 + 2 before and 4 + 3 after; the worst regret +0.018 / +0.037 → +0.009 / +0.033).
    # The live preset (`vision-live`) keeps its own settings: its horizon is longer than a
    # stream's.
    harmonia_window=25,
    harmonia_options={
        "min_score": 0.85,
        "tolerance": 0.0,
        "drift_threshold": 0.6,
        "reuse_threshold": 0.3,
        "retrain_cooldown": 6,
        "promise_in_context": True,
        "patience": 3,
        "payback_windows": 20,
        "evidence_ttl": 40,
        "context_threshold": 3.0,
        "explore": True,
        "evidence_margin": 0.05,
        "lookahead": 1,
    },
    # sharpness beside luminance: the stress test tells noise from clean images by it
    harmonia_drift={"detectors": {"kl": {"bins": 10}}, "features": ["sharpness"]},
)

# The traffic system's names, kept for the code and tests that import them.
MODELS = TRAFFIC.models
WINDOW = TRAFFIC.window
RETRAIN_EVERY = TRAFFIC.retrain_every
QUALITY_TARGET = TRAFFIC.quality_target
BASELINES = TRAFFIC.baselines
APPROACHES = TRAFFIC.approaches


def settings_for(system: str) -> Settings:
    """The approach settings of a system registered under ``harmonia.systems`` (its replay
    spec's), or a ValueError naming those installed."""
    from harmonia.replay.systems import spec_for

    return spec_for(system).settings


def _policy_fields(name: str, settings: Settings) -> dict[str, Any]:
    if name.startswith("single-"):
        model = name.removeprefix("single-").removesuffix("+retrain")
        if model not in settings.models:
            raise ValueError(f"unknown approach {name!r}; known: {', '.join(settings.approaches)}")
        options = {"retrain_every": settings.retrain_every} if name.endswith("+retrain") else {}
        return {"models": [model], "strategy": "single", "options": options}
    if name in {"switch", "switch+retrain"}:
        options = {"retrain_every": settings.retrain_every} if name.endswith("+retrain") else {}
        return {
            "strategy": "switch",
            "options": options,
            "boundaries": [
                {"when": f"quality < {settings.quality_target}", "then": "switch_model"}
            ],
        }
    if name == "harmone":
        # HarmonE as published: drift against the previous window, histograms on their own
        # edges, an unbounded energy budget and a forced switch (see its strategy module).
        return {
            "strategy": "harmone",
            "options": {"stay_if_best": False, "budget_bounds": None},
            "drift": {
                "reference": "previous_window",
                "detectors": {"kl": {"shared_edges": False}},
            },
        }
    if name == "harmonia":
        return {
            "strategy": "harmonia",
            "options": dict(settings.harmonia_options),
            "drift": dict(settings.harmonia_drift),
            "window": settings.harmonia_window or settings.window,
        }
    raise ValueError(f"unknown approach {name!r}; known: {', '.join(settings.approaches)}")


def approach_policy(name: str, system: str = "traffic") -> Policy:
    """The policy that runs approach ``name`` on ``system`` (every approach but the oracle)."""
    return settings_policy(name, settings_for(system))


def settings_policy(
    name: str, settings: Settings, *, policy: str = "", initial_model: str = ""
) -> Policy:
    """The policy of baseline (or ``harmonia``) approach ``name`` over ``settings``' models,
    named ``policy`` (default ``<system>-<name>``), starting on ``initial_model`` (default
    the most accurate). A pipeline applies it to each adapting service, with that service's
    models (`harmonia.replay.pipeline_lab`)."""
    fields = {
        "policy": policy or f"{settings.system}-{name}",
        "system": settings.system,
        "models": settings.models,
        "initial_model": initial_model or settings.models[-1],
        "window": settings.window,
        **({"objective": settings.objective} if settings.objective else {}),
        **_policy_fields(name, settings),
    }
    if len(fields["models"]) == 1:
        fields["initial_model"] = fields["models"][0]
    return parse_policy(fields)


def parse_approaches(text: str, system: str = "traffic") -> list[str]:
    """``all`` or a comma-separated list of approach names, validated, in the given order."""
    known = settings_for(system).approaches
    if text.strip() == "all":
        return list(known)
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise ValueError(
            f"unknown approach(es) {', '.join(unknown) or '(none given)'}; "
            f"choose from: all, {', '.join(known)}"
        )
    return list(dict.fromkeys(names))
