"""The approaches the replay lab compares, each an ordinary policy.

HarmonE's nine baselines (its published evaluation), ``harmonia`` (ours) and ``oracle`` (the
hindsight limit, computed by `harmonia.replay.oracle` rather than run by the engine).
Every approach shares the objective, the window and the drift settings, so that only the
strategy differs.
"""

from __future__ import annotations

from typing import Any

from harmonia.core.policy import Policy, parse_policy

MODELS = ["linear", "svm", "lstm"]
WINDOW = 200
#: HarmonE's periodic retraining made 4 adaptations over the 14,501-sample test stream
RETRAIN_EVERY = 15
QUALITY_TARGET = 0.78
ORACLE = "oracle"

_SINGLES = [f"single-{m}" for m in MODELS]
BASELINES = [
    "harmone",
    "switch",
    "switch+retrain",
    *_SINGLES,
    *(f"{s}+retrain" for s in _SINGLES),
]
APPROACHES = [*BASELINES, "harmonia", ORACLE]


def _policy_fields(name: str) -> dict[str, Any]:
    if name.startswith("single-"):
        model = name.removeprefix("single-").removesuffix("+retrain")
        options = {"retrain_every": RETRAIN_EVERY} if name.endswith("+retrain") else {}
        return {"models": [model], "strategy": "single", "options": options}
    if name in {"switch", "switch+retrain"}:
        options = {"retrain_every": RETRAIN_EVERY} if name.endswith("+retrain") else {}
        return {
            "strategy": "switch",
            "options": options,
            "boundaries": [{"when": f"quality < {QUALITY_TARGET}", "then": "switch_model"}],
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
        # Ten bins, not HarmonE's fifty: a 200-sample window fills fifty bins too thinly,
        # and on this stream clean windows then reach KL 0.8 against the training data.
        return {
            "strategy": "harmonia",
            "options": {
                "min_score": QUALITY_TARGET,
                "drift_threshold": 0.6,
                "reuse_threshold": 0.6,
            },
            "drift": {"detectors": {"kl": {"bins": 10}}},
        }
    raise ValueError(f"unknown approach {name!r}; known: {', '.join(APPROACHES)}")


def approach_policy(name: str, system: str = "traffic") -> Policy:
    """The policy that runs approach ``name`` (every approach but the oracle)."""
    fields = {
        "policy": f"{system}-{name}",
        "system": system,
        "models": MODELS,
        "initial_model": MODELS[-1],
        "window": WINDOW,
        **_policy_fields(name),
    }
    if len(fields["models"]) == 1:
        fields["initial_model"] = fields["models"][0]
    return parse_policy(fields)


def parse_approaches(text: str) -> list[str]:
    """``all`` or a comma-separated list of approach names, validated, in the given order."""
    if text.strip() == "all":
        return list(APPROACHES)
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in APPROACHES]
    if unknown or not names:
        raise ValueError(
            f"unknown approach(es) {', '.join(unknown) or '(none given)'}; "
            f"choose from: all, {', '.join(APPROACHES)}"
        )
    return list(dict.fromkeys(names))
