"""Bring your own model: a scikit-learn service that Harmonia adapts (docs/byom.md).

The service predicts ``y`` from two features with one of two variants of its model: ``small``
(a ridge regression, cheap, trained where the data used to be) and ``large`` (gradient
boosting, dearer, trained on a wider range). It reports every prediction through a
`harmonia.sdk.Probe` (latency and energy measured, the target, and feature ``x1`` as the
value drift detectors watch) and carries out the server's actions with an `Effector`:
switch variant, retrain one on the recent data (a new version, numbered here: no model
registry needed), or serve an earlier version again.

Half-way, ``x1`` drifts out of the range ``small`` knows; its R² collapses, the policy
(``policy.yaml``) switches to ``large`` and, since the data moved, retrains it.

    harmonia apps register examples/byom/app.yaml --token <admin token>   # prints a token
    harmonia policy put byom examples/byom/policy.yaml --token <app token>
    python examples/byom/service.py --token <app token>
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.linear_model import Ridge

from harmonia import fingerprint
from harmonia.sdk import ActionMessage, Effector, HTTPTransport, Probe

#: the service of the registered application (app.yaml) whose telemetry this is
SERVICE = "predict"
#: how many recent (features, target) pairs a retrain learns from
RECENT = 300
#: x1's range before and after the drift
BEFORE, AFTER = (-0.5, 0.5), (1.5, 3.0)


def make_data(rows: int, x1_range: tuple[float, float], seed: int) -> tuple[Any, Any]:
    """``rows`` features (x0, x1) and targets ``y = x0 + x1² + noise``, x1 in ``x1_range``."""
    rng = np.random.default_rng(seed)
    x = np.column_stack([rng.normal(0.0, 1.0, rows), rng.uniform(*x1_range, rows)])
    y = x[:, 0] + x[:, 1] ** 2 + rng.normal(0.0, 0.1, rows)
    return x, y


def live_data(samples: int, drift_at: int, seed: int) -> tuple[Any, Any]:
    """The stream the service serves: x1 in `BEFORE`, then in `AFTER` from ``drift_at``."""
    x_before, y_before = make_data(drift_at, BEFORE, seed)
    x_after, y_after = make_data(max(samples - drift_at, 0), AFTER, seed + 1)
    return np.vstack([x_before, x_after])[:samples], np.concatenate([y_before, y_after])[:samples]


def new_estimator(model: str) -> Any:
    """A fresh, unfitted estimator of variant ``model``."""
    if model == "small":
        return Ridge(alpha=1.0)
    return GradientBoostingRegressor(n_estimators=60, max_depth=3, random_state=0)


@dataclass
class Service:
    """The variants, the version of each in service, and every version trained so far
    (kept in memory, so that an earlier one can serve again: ``reuse_version``)."""

    probe: Probe
    active: str = "small"
    versions: dict[tuple[str, int], Any] = field(default_factory=dict)
    current: dict[str, int] = field(default_factory=dict)
    recent: deque[tuple[Any, float]] = field(default_factory=lambda: deque(maxlen=RECENT))
    applied: list[str] = field(default_factory=list)
    # handlers run on the probe's sender thread, predictions on the caller's
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_version(self, model: str, x: Any, y: Any) -> int:
        """Train a new version of ``model`` on (x, y), number it (1, 2, ... per variant:
        ``version=`` needs no registry), tell the server what it was trained on, and make
        it that variant's current version."""
        estimator = new_estimator(model).fit(x, y)
        version = max((v for m, v in self.versions if m == model), default=0) + 1
        # the fingerprint of the drift input (x1) it learnt from: `reference: training`
        # compares each window with it, and a reuse weighs how well it fits today's data
        self.probe.describe_version(
            model,
            version,
            fingerprint=fingerprint(x[:, 1]),
            details={"rows": len(y), "r2": float(estimator.score(x, y))},
        )
        with self.lock:
            self.versions[model, version] = estimator
            self.current[model] = version
        return version

    def serving(self) -> tuple[str, int, Any]:
        """The variant in service, its version and its estimator (read together: a handler
        may swap them meanwhile)."""
        with self.lock:
            model, version = self.active, self.current[self.active]
            return model, version, self.versions[model, version]

    # -- the server's actions: a handler returns what it did, or raises why it could not --
    def switch(self, action: ActionMessage) -> str:
        if action.model is None or action.model not in self.current:
            raise ValueError(f"no variant {action.model!r}")
        with self.lock:
            self.active = action.model
        self.applied.append(f"switch_model {action.model}")
        return f"serving {action.model} v{self.current[action.model]}"

    def retrain(self, action: ActionMessage) -> str:
        model = action.model or self.active
        pairs = list(self.recent)
        if len(pairs) < 50:
            raise ValueError(f"only {len(pairs)} recent samples; retraining needs 50")
        x = np.vstack([features for features, _ in pairs])
        y = np.array([target for _, target in pairs])
        version = self.add_version(model, x, y)
        with self.lock:
            self.active = model
        self.applied.append(f"retrain {model} v{version}")
        return f"trained {model} v{version} on the last {len(y)} samples"

    def reuse(self, action: ActionMessage) -> str:
        key = (action.model or self.active, action.version or 0)
        if key not in self.versions:
            raise ValueError(f"no version {key[1]} of {key[0]} here")
        with self.lock:
            self.active, self.current[key[0]] = key
        self.applied.append(f"reuse_version {key[0]} v{key[1]}")
        return f"serving {key[0]} v{key[1]} again"

    def effector(self) -> Effector:
        effector = Effector()
        effector.on("switch_model", self.switch)
        effector.on("retrain", self.retrain)
        effector.on("reuse_version", self.reuse)
        return effector


@dataclass
class Summary:
    """What a run did: how many predictions each variant made, and the actions applied."""

    served_by: Counter[str]
    applied: list[str]


def main(
    server: str,
    token: str,
    *,
    app: str = "byom",
    samples: int = 600,
    drift_at: int | None = None,
    rate: float | None = 200.0,
    seed: int = 0,
) -> Summary:
    """Serve ``samples`` predictions (``rate`` a second), reporting to ``server`` as ``app``;
    the drift starts half-way unless ``drift_at`` says when."""
    probe = Probe(app, HTTPTransport(server, token), service=SERVICE, flush_interval=0.25)
    service = Service(probe)
    probe.effector = service.effector()
    service.add_version("small", *make_data(1000, BEFORE, seed + 10))
    service.add_version("large", *make_data(2000, (-3.0, 3.0), seed + 20))
    x, y = live_data(samples, samples // 2 if drift_at is None else drift_at, seed)
    served_by: Counter[str] = Counter()
    started = time.perf_counter()
    with probe:  # leaving it flushes what is left and applies the last actions
        for i, (row, target) in enumerate(zip(x, y, strict=True)):
            model, version, estimator = service.serving()
            with probe.measure(model, version) as sample:  # times and meters the block
                sample.prediction = float(estimator.predict(row.reshape(1, -1))[0])
                sample.target = float(target)  # known at once here; else probe.record later
                sample.drift_value = float(row[1])  # what the drift detectors watch
            served_by[model] += 1
            service.recent.append((row, float(target)))
            if rate:
                time.sleep(max(0.0, started + (i + 1) / rate - time.perf_counter()))
    probe.transport.close()
    return Summary(served_by, service.applied)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default="http://127.0.0.1:8000")
    parser.add_argument("--token", default=os.environ.get("HARMONIA_APP_TOKEN", ""))
    parser.add_argument("--app", default="byom")
    parser.add_argument("--samples", type=int, default=600)
    parser.add_argument("--rate", type=float, default=200.0, help="predictions per second")
    return parser.parse_args()


if __name__ == "__main__":
    arguments = _arguments()
    done = main(
        arguments.server,
        arguments.token,
        app=arguments.app,
        samples=arguments.samples,
        rate=arguments.rate,
    )
    print(f"served: {dict(done.served_by)}; applied: {done.applied or 'nothing'}")
