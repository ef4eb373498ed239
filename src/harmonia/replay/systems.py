"""What the replay lab needs of a reference system: a small protocol and its two implementations.

The runner, the lab and the oracle know nothing of flows or images. A `ReplaySpec` tells
them how to prepare a system's models, open the system on a registry, turn data into a
`Stream` (inputs, targets, drift values, what a retrain may see), serve one input (the
prediction and the telemetry metrics it carries), and judge predictions (`Quality`). The
managed system itself is `Adaptable` (``switch``, ``reuse``, ``retrain``: the traffic and the
vision systems already are), plus ``knowledge`` and ``energy_per_inference``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from harmonia.core.knowledge import Knowledge
from harmonia.energy import EnergyMeter
from harmonia.registry import ModelRegistry
from harmonia.replay.approaches import TRAFFIC as TRAFFIC_SETTINGS
from harmonia.replay.approaches import VISION as VISION_SETTINGS
from harmonia.replay.approaches import Settings
from harmonia.replay.oracle import R2, Quality, classification
from harmonia.replay.results import ApproachResult
from harmonia.systems.serving import Adaptable

#: what serving one input reports: the prediction, and metrics for the telemetry
Serve = Callable[[Any], tuple[float, dict[str, float]]]


@dataclass(frozen=True)
class Stream:
    """A recorded stream, ready to replay: one input, target and drift value per sample.

    ``history[: i + offset]`` is what the system has observed once sample ``i`` is served
    (the flows so far; the images so far), which is all a retrain at that point may use.
    ``features`` are other per-sample metrics that describe the inputs (the vision
    system's image sharpness), reported with each sample.
    """

    inputs: Sequence[Any] | np.ndarray
    targets: np.ndarray
    drift_values: np.ndarray
    history: Any
    offset: int
    first_ts: float
    sample_seconds: float
    source: str
    regions: list[tuple[int, int]] = field(default_factory=list)
    conditions: list[str] = field(default_factory=list)
    features: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.targets)

    def observed(self, index: int) -> Any:
        """What the system has seen once sample ``index`` is served."""
        return self.history[: index + self.offset]

    def ts(self, index: int) -> float:
        """Event time of sample ``index``."""
        return self.first_ts + index * self.sample_seconds


class ReplaySystem(Adaptable, Protocol):
    """A managed system the lab can replay: `Adaptable`, and it knows its versions and
    costs."""

    registry: ModelRegistry

    def knowledge(self, models: Sequence[str], active: str) -> Knowledge: ...

    def energy_per_inference(self) -> dict[str, float]: ...


class ReplaySpec(Protocol):
    """How the lab drives one reference system."""

    name: str
    settings: Settings
    app: str
    service: str

    def quality(self, objective_quality: str) -> Quality:
        """How predictions are judged, given the quality the objective names."""
        ...

    def registry_for(self, data_dir: Path, menu: str) -> ModelRegistry: ...

    def prepare(
        self,
        registry: ModelRegistry,
        menu: str,
        meter: EnergyMeter,
        progress: Callable[[str], None] | None,
    ) -> None:
        """Set up version 1 of every model on first use (trained, or shipped weights)."""
        ...

    def open(
        self,
        registry: ModelRegistry,
        menu: str,
        meter: EnergyMeter,
        seed: int,
        *,
        stress_test: bool = True,
    ) -> ReplaySystem:
        """The managed system over ``registry``. ``stress_test=False``: new versions are
        not measured under the stress test's conditions, for a strategy that reads none
        (a system without a stress test ignores it)."""
        ...

    def load(self, data: Path | None, samples: int | None) -> Any:
        """What `stream` replays, read from the system's data file (None: the shipped one)
        and cut to its first ``samples`` samples; a bad file raises ValueError before any
        training."""
        ...

    def stream(self, data: Any) -> Stream:
        """The stream of ``data`` (a raw series, a scenario: whatever the system replays)."""
        ...

    def serve(self, system: ReplaySystem) -> Serve:
        """A function that serves one input with the model in service."""
        ...

    def predictions(self, system: ReplaySystem, kind: str, stream: Stream) -> np.ndarray:
        """Version 1 of ``kind``'s predictions of the whole stream, one call at a time."""
        ...

    def run_approach(
        self,
        name: str,
        stream: Stream,
        registry: ModelRegistry,
        menu: str,
        meter: EnergyMeter,
        *,
        seed: int = 0,
    ) -> ApproachResult:
        """Replay approach ``name`` over ``stream``, on forks of ``registry`` (what the lab
        calls, once per approach, perhaps in another process)."""
        ...

    def run_oracle(
        self, stream: Stream, registry: ModelRegistry, menu: str, meter: EnergyMeter
    ) -> tuple[ApproachResult, list[tuple[float, float]]] | None:
        """The hindsight oracle and its frontier, or None where the system has none."""
        ...


class OneServiceSpec:
    """What the one-service systems share: one engine over one service per approach
    (`harmonia.replay.runner`), and the hindsight oracle over their models."""

    name: str

    def run_approach(
        self,
        name: str,
        stream: Stream,
        registry: ModelRegistry,
        menu: str,
        meter: EnergyMeter,
        *,
        seed: int = 0,
    ) -> ApproachResult:
        from harmonia.replay.runner import run_approach

        return run_approach(name, stream, registry, menu, meter, system=self.name, seed=seed)

    def run_oracle(
        self, stream: Stream, registry: ModelRegistry, menu: str, meter: EnergyMeter
    ) -> tuple[ApproachResult, list[tuple[float, float]]] | None:
        from harmonia.replay.runner import run_oracle

        return run_oracle(stream, registry, menu, meter, system=self.name)


# -- traffic -----------------------------------------------------------------------------------
class TrafficSpec(OneServiceSpec):
    """The PeMS flow forecaster: inputs are lag windows, quality is R²."""

    name = "traffic"
    settings = TRAFFIC_SETTINGS
    app = "traffic"
    service = "forecast"
    #: event time between two samples: PeMS aggregates flow over 5 minutes
    sample_seconds = 300.0

    def quality(self, objective_quality: str) -> Quality:
        return R2

    def registry_for(self, data_dir: Path, menu: str) -> ModelRegistry:
        return ModelRegistry(data_dir / "registry" / f"traffic-{menu}")

    def prepare(
        self,
        registry: ModelRegistry,
        menu: str,
        meter: EnergyMeter,
        progress: Callable[[str], None] | None,
    ) -> None:
        from harmonia.systems.traffic.data import TRAIN, load_flow, shipped

        system = self._system(registry, menu, meter, 0)
        system.ensure_trained(load_flow(shipped(TRAIN)), progress)

    def _system(self, registry: ModelRegistry, menu: str, meter: EnergyMeter, seed: int) -> Any:
        from harmonia.systems.traffic.system import TrafficSystem

        return TrafficSystem(
            registry,
            menu,  # type: ignore[arg-type]
            meter,
            seed=seed,
            models=self.settings.models,
        )

    def open(
        self,
        registry: ModelRegistry,
        menu: str,
        meter: EnergyMeter,
        seed: int,
        *,
        stress_test: bool = True,
    ) -> ReplaySystem:
        system: ReplaySystem = self._system(registry, menu, meter, seed)  # no stress test
        return system

    def load(self, data: Path | None, samples: int | None) -> Any:
        """A flow CSV's path (None: the shipped drifted test stream, with its drift regions),
        or its first ``samples`` forecasts' worth of flow."""
        from harmonia.systems.traffic.data import LOOKBACK, TEST, load_flow, shipped

        if data is None and samples is None:
            return None
        series = load_flow(data or shipped(TEST))  # read now: a bad file fails early
        return data if samples is None else series[: samples + LOOKBACK]

    def stream(self, data: Any) -> Stream:
        """``data``: a flow series (array), or None for the shipped drifted test stream."""
        from harmonia.systems.traffic.data import (
            LOOKBACK,
            TEST,
            TEST_NO_DRIFT,
            drift_regions,
            lag_windows,
            load_flow,
            shipped,
        )

        regions: list[tuple[int, int]] = []
        source = "array"
        if data is None or isinstance(data, str | Path):
            path = Path(data) if data is not None else shipped(TEST)
            source = str(path)
            series = load_flow(path)
            if data is None:
                clean = load_flow(shipped(TEST_NO_DRIFT))
                regions = [
                    (max(0, a - LOOKBACK), b - LOOKBACK) for a, b in drift_regions(series, clean)
                ]
        else:
            series = np.asarray(data, dtype=float)
        inputs, targets = lag_windows(series)
        return Stream(
            inputs=inputs.tolist(),
            targets=targets,
            drift_values=targets,
            history=series,
            offset=LOOKBACK + 1,
            first_ts=LOOKBACK * self.sample_seconds,
            sample_seconds=self.sample_seconds,
            source=source,
            regions=regions,
        )

    def serve(self, system: ReplaySystem) -> Serve:
        predict = system.predict  # type: ignore[attr-defined]
        empty: dict[str, float] = {}

        def serve(row: Any) -> tuple[float, dict[str, float]]:
            return predict(row), empty

        return serve

    def predictions(self, system: ReplaySystem, kind: str, stream: Stream) -> np.ndarray:
        predict = system.model(kind, 1).predict  # type: ignore[attr-defined]
        return np.asarray([predict(row) for row in stream.inputs])


# -- vision ------------------------------------------------------------------------------------
class VisionSpec(OneServiceSpec):
    """The camera classifier: inputs are images, quality is accuracy (or confidence)."""

    name = "vision"
    settings = VISION_SETTINGS
    app = "vision"
    service = "classify"
    #: event time between two images: one frame a second
    sample_seconds = 1.0

    def quality(self, objective_quality: str) -> Quality:
        return classification(objective_quality)

    def registry_for(self, data_dir: Path, menu: str) -> ModelRegistry:
        return ModelRegistry(data_dir / "registry" / "vision")

    def prepare(
        self,
        registry: ModelRegistry,
        menu: str,
        meter: EnergyMeter,
        progress: Callable[[str], None] | None,
    ) -> None:
        self._system(registry, meter, 0).ensure_trained(progress)

    def _system(
        self, registry: ModelRegistry, meter: EnergyMeter, seed: int, stress_test: bool = True
    ) -> Any:
        from harmonia.systems.vision.system import VisionSystem

        return VisionSystem(
            registry, meter, seed=seed, models=self.settings.models, stress_test=stress_test
        )

    def open(
        self,
        registry: ModelRegistry,
        menu: str,
        meter: EnergyMeter,
        seed: int,
        *,
        stress_test: bool = True,
    ) -> ReplaySystem:
        system: ReplaySystem = self._system(registry, meter, seed, stress_test)
        return system

    def load(self, data: Path | None, samples: int | None) -> Any:
        """The scenario in file ``data`` (None: the shipped one), shortened to ``samples``."""
        from harmonia.systems.vision.scenario import load_scenario

        scenario = load_scenario(data)
        return scenario.shortened(samples) if samples else scenario

    def stream(self, data: Any) -> Stream:
        """``data``: a `Scenario`, a scenario file, or None for the shipped default."""
        from harmonia.systems.vision.data import input_features, mean_luminance
        from harmonia.systems.vision.scenario import Scenario, load_scenario

        scenario = data if isinstance(data, Scenario) else load_scenario(data)
        images, labels = scenario.stream()
        return Stream(
            inputs=images,
            targets=labels.astype(float),
            drift_values=mean_luminance(images),
            history=images,
            offset=1,
            first_ts=0.0,
            sample_seconds=self.sample_seconds,
            source=scenario.source or "scenario",
            regions=scenario.regions(),
            conditions=[d.condition for d in scenario.drifts],
            features=input_features(images),
        )

    def serve(self, system: ReplaySystem) -> Serve:
        predict = system.predict  # type: ignore[attr-defined]

        def serve(image: Any) -> tuple[float, dict[str, float]]:
            label, confidence = predict(image)
            return float(label), {"confidence": confidence}

        return serve

    def predictions(self, system: ReplaySystem, kind: str, stream: Stream) -> np.ndarray:
        predict = system.model(kind, 1).predict  # type: ignore[attr-defined]
        return np.asarray([predict(image) for image in stream.inputs], dtype=float)


#: the specs the built-in systems name (`harmonia.systems.ReferenceSystem.replay`)
TRAFFIC = TrafficSpec()
VISION = VisionSpec()


def spec_for(system: str) -> ReplaySpec:
    """The replay spec of a system registered under ``harmonia.systems``, or a ValueError
    naming those installed."""
    from harmonia.systems import reference_system, system_names

    try:
        return reference_system(system).replay_spec()
    except LookupError:
        known = ", ".join(system_names())
        raise ValueError(f"unknown system {system!r}; known: {known}") from None
