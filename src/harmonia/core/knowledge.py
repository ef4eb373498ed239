"""Knowledge: the K of MAPE-K — what Harmonia knows about one managed system.

The current window of telemetry, the model and version in service, the archived versions
with fingerprints of their training data, what each model achieved when it served, and the
recent windows and actions. Drivers (the server, the replay lab) feed it samples and tell it
which actions were applied; the engine reads it and closes windows.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from harmonia.core.actions import Action, ActionKind
from harmonia.core.conditions import OBSERVER_PREFIX
from harmonia.core.monitor import WindowSummary
from harmonia.core.policy import MAX_WINDOW_SAMPLES, Window
from harmonia.core.telemetry import TelemetrySample
from harmonia.core.versions import ModelVersion

FINGERPRINT_SIZE = 256


def fingerprint(values: ArrayLike, size: int = FINGERPRINT_SIZE) -> tuple[float, ...]:
    """A fixed-size sketch of a data distribution: ``size`` evenly spaced quantiles.

    Versions store it instead of their training data (HarmonE copied whole CSV files), and
    any drift detector can be fitted on it to compare today's data with that version's.

    >>> fingerprint([3.0, 1.0, 2.0], size=3)
    (1.0, 2.0, 3.0)
    """
    array = np.asarray(values, dtype=float).ravel()
    array = array[np.isfinite(array)]
    if array.size == 0:
        raise ValueError("cannot fingerprint an empty set of values")
    quantiles = np.quantile(array, np.linspace(0.0, 1.0, size))
    return tuple(float(q) for q in quantiles)


@dataclass
class ModelProfile:
    """What a model achieved in the windows it served (the latest, and how many)."""

    windows: int = 0
    score: float = math.nan
    quality: float = math.nan
    energy_j: float = math.nan
    latency_ms: float = math.nan


class Knowledge:
    """Mutable knowledge of one managed system; the engine is the only one to close windows."""

    def __init__(
        self,
        models: Sequence[str],
        active_model: str,
        active_version: int | None = None,
        *,
        history: int = 1000,
    ) -> None:
        if active_model not in models:
            raise ValueError(f"active model {active_model!r} is not one of {list(models)}")
        self.models = list(models)
        self.active_model = active_model
        #: the version each model serves when it is switched to (HarmonE's "current" folder)
        self.current_versions: dict[str, int | None] = dict.fromkeys(self.models)
        self.current_versions[active_model] = active_version
        self.versions: dict[str, list[ModelVersion]] = {m: [] for m in self.models}
        self.profiles: dict[str, ModelProfile] = {m: ModelProfile() for m in self.models}
        self.window: list[TelemetrySample] = []
        self.window_started: float | None = None
        self.summaries: deque[WindowSummary] = deque(maxlen=history)
        self.actions: deque[Action] = deque(maxlen=history)
        self.windows_closed = 0
        self.last_action_window: int | None = None
        self.last_action_ts: float | None = None
        self.observed_reference: np.ndarray | None = None
        #: the observation agents' latest results (``observer.<name>.<field>`` -> value)
        self.observer_signals: dict[str, float] = {}

    # -- feeding -----------------------------------------------------------------------
    def note_observation(self, name: str, values: Mapping[str, float | None]) -> None:
        """An observer's latest run: its fields become signals of the next windows."""
        for field_name, value in values.items():
            key = f"{OBSERVER_PREFIX}{name}.{field_name}"
            self.observer_signals[key] = math.nan if value is None else float(value)

    def observe(self, sample: TelemetrySample) -> None:
        """Add one sample to the open window."""
        if self.window_started is None:
            self.window_started = sample.ts
        self.window.append(sample)

    def observe_many(self, samples: Iterable[TelemetrySample]) -> None:
        for sample in samples:
            self.observe(sample)

    def add_version(self, info: ModelVersion) -> None:
        """Record a stored version (after training or retraining)."""
        if info.model not in self.versions:
            raise ValueError(f"unknown model {info.model!r}; known: {self.models}")
        known = self.versions[info.model]
        if any(v.version == info.version for v in known):
            raise ValueError(f"{info.model} version {info.version} is already known")
        known.append(info)
        known.sort(key=lambda v: v.version)
        if self.current_versions[info.model] is None:
            self.current_versions[info.model] = info.version

    def put_version(self, info: ModelVersion) -> None:
        """Record a stored version, replacing what was known of it (a live system describes
        its versions, possibly after the loop first saw them in telemetry)."""
        if info.model not in self.versions:
            raise ValueError(f"unknown model {info.model!r}; known: {self.models}")
        known = self.versions[info.model]
        known[:] = [v for v in known if v.version != info.version]
        self.add_version(info)

    @property
    def active_version(self) -> int | None:
        return self.current_versions[self.active_model]

    def activate(self, model: str, version: int | None = None) -> None:
        """The managed system now serves ``model``, at ``version`` or at its current one."""
        if model not in self.versions:
            raise ValueError(f"unknown model {model!r}; known: {self.models}")
        if version is None:
            version = self.current_versions[model]
        if (model, version) != (self.active_model, self.active_version):
            self.observed_reference = None
        self.active_model = model
        self.current_versions[model] = version

    # -- reading -----------------------------------------------------------------------
    def version_info(self, model: str, version: int | None) -> ModelVersion | None:
        return next((v for v in self.versions.get(model, []) if v.version == version), None)

    def archived_versions(self, model: str) -> list[ModelVersion]:
        """Stored versions of ``model`` other than its current one."""
        current = self.current_versions.get(model)
        return [v for v in self.versions.get(model, []) if v.version != current]

    def reference_values(self) -> np.ndarray | None:
        """What the version in service was trained on (its fingerprint), if known."""
        info = self.version_info(self.active_model, self.active_version)
        if info is not None and info.fingerprint:
            return np.asarray(info.fingerprint, dtype=float)
        return self.observed_reference

    def windows_since_action(self) -> int | None:
        if self.last_action_window is None:
            return None
        return self.windows_closed - self.last_action_window

    # -- the engine's bookkeeping ----------------------------------------------------------
    def window_due(self, window: Window, now: float) -> bool:
        if not self.window:
            return False
        if window.samples is not None:
            return len(self.window) >= window.samples
        assert window.seconds is not None
        if len(self.window) >= MAX_WINDOW_SAMPLES:
            return True
        return self.window_started is not None and now - self.window_started >= window.seconds

    def take_window(self, window: Window) -> list[TelemetrySample]:
        """Remove and return the samples of the window that just closed."""
        size = window.samples or len(self.window)
        taken, self.window = self.window[:size], self.window[size:]
        self.window_started = self.window[0].ts if self.window else None
        return taken

    def record_window(self, summary: WindowSummary, samples: Sequence[TelemetrySample]) -> None:
        """Keep the summary and update the profile of each model that served in it."""
        self.summaries.append(summary)
        self.windows_closed += 1
        for model in {s.model for s in samples} & set(self.profiles):
            served = [s for s in samples if s.model == model]
            self.profiles[model] = _profile_update(self.profiles[model], served, summary, model)
        if self.observed_reference is None and summary.drift_values.size:
            self.observed_reference = summary.drift_values

    def credit(self, summary: WindowSummary, samples: Sequence[TelemetrySample]) -> None:
        """Update the profile of the model that served ``samples``, a part of a window cut at
        a switch (``summary`` is theirs alone), without closing a window."""
        if summary.model in self.profiles:
            self.profiles[summary.model] = _profile_update(
                self.profiles[summary.model], samples, summary, summary.model
            )

    def record_actions(self, actions: Sequence[Action]) -> None:
        for action in actions:
            self.actions.append(action)
            if action.kind is not ActionKind.NONE:
                self.last_action_window = self.windows_closed
                self.last_action_ts = action.ts


def _profile_update(
    profile: ModelProfile,
    served: Sequence[TelemetrySample],
    summary: WindowSummary,
    model: str,
) -> ModelProfile:
    if model != summary.model or len(served) != summary.count:
        return profile  # a mixed window (a switch inside it) says nothing about one model
    signals = summary.signals
    return ModelProfile(
        windows=profile.windows + 1,
        score=signals.get("score", math.nan),
        quality=signals.get("quality", math.nan),
        energy_j=signals.get("energy_j", math.nan),
        latency_ms=signals.get("p50(latency_ms)", math.nan),
    )
