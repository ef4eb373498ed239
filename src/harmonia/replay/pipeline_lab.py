"""The pipeline in the replay lab: its `ReplaySpec` (``SPEC``), the counterpart of the
one-service specs of `harmonia.replay.systems`.

``harmonia replay pipeline`` runs it: an approach is a policy per classify service
(`approach_policies`: the shipped presets, or one baseline strategy applied to both services
over their own models), and `run_approach` is `harmonia.replay.pipeline.replay_pipeline`
under them, its result a row of the lab's results (`approach_result`). The system registers
it by name (``harmonia.systems.pipeline.SYSTEM.replay``), so the lab imports it only when the
pipeline is replayed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harmonia.core.policy import Policy
from harmonia.energy import EnergyMeter
from harmonia.registry import ModelRegistry
from harmonia.replay.approaches import VISION as VISION_SETTINGS
from harmonia.replay.approaches import Settings, settings_policy
from harmonia.replay.oracle import Quality, classification, mean_window_score
from harmonia.replay.pipeline import FRAME_SECONDS, PipelineReplay, preset_policy, replay_pipeline
from harmonia.replay.results import ApproachResult, ServiceResult, Timeline
from harmonia.replay.systems import VISION as _VISION
from harmonia.replay.systems import Stream
from harmonia.systems.pipeline import CLASSIFY, SERVICES, SYSTEM
from harmonia.systems.vision.scenario import Scenario
from harmonia.systems.vision.system import VisionSystem

#: the approach that runs each service under its shipped policy (``pipeline-<service>``)
PRESETS = "presets"


@dataclass(frozen=True)
class PipelineSettings(Settings):
    """The pipeline's approaches: ``presets`` (each service under its shipped policy), and
    each baseline strategy (and ``harmonia``) applied to every adapting service, over that
    service's models, from the model its preset starts on. ``single`` keeps that model."""

    @property
    def baselines(self) -> list[str]:
        """The vision baselines each service can run alone (no oracle: see `PipelineSpec`)."""
        return ["harmone", "switch", "switch+retrain", "single", "single+retrain"]

    @property
    def approaches(self) -> list[str]:
        """What ``--approaches all`` runs: the shipped presets first, as the reference."""
        return [PRESETS, *self.baselines, "harmonia"]


SETTINGS = PipelineSettings(**{**dataclasses.asdict(VISION_SETTINGS), "system": SYSTEM.name})


def approach_policies(name: str, settings: Settings = SETTINGS) -> dict[str, Policy]:
    """The policy of each classify service under approach ``name`` (`PipelineSettings`)."""
    if name not in settings.approaches:
        raise ValueError(f"unknown approach {name!r}; known: {', '.join(settings.approaches)}")
    policies: dict[str, Policy] = {}
    for service, models in SERVICES.items():
        preset = preset_policy(service)
        if name == PRESETS:
            policies[service] = preset
            continue
        start = preset.start_model
        policies[service] = settings_policy(
            name.replace("single", f"single-{start}", 1) if name.startswith("single") else name,
            dataclasses.replace(settings, models=list(models)),
            policy=f"{SYSTEM.name}-{service}-{name}",
            initial_model=start,
        )
    return policies


@dataclass(frozen=True)
class PipelineStream(Stream):
    """The scenario's stream (what the lab reports: length, drift regions), and the scenario
    itself, whose frames the pipeline's camera makes."""

    scenario: Scenario | None = None


class PipelineSpec:
    """The pipeline in the replay lab: an approach is a policy per classify service
    (`approach_policies`), replayed by `replay_pipeline` with one engine per service. Its row
    reports the ensemble's accuracy and the joules per frame end to end (``energy_per_stage``
    splits them), and each service's accuracy, energy and actions (``services``). There is no
    oracle: the one-service oracle does not bound an ensemble of two adapting services."""

    name = SYSTEM.name
    app = SYSTEM.name
    service = CLASSIFY
    sample_seconds = FRAME_SECONDS
    settings: Settings = SETTINGS

    # Quality, models and data are the vision system's: its spec answers for them.
    def quality(self, objective_quality: str) -> Quality:
        """The vision system's: the ensemble classifies the same frames."""
        return _VISION.quality(objective_quality)

    def registry_for(self, data_dir: Path, menu: str) -> ModelRegistry:
        """The vision system's registry: the services' forks start from its versions 1."""
        return _VISION.registry_for(data_dir, menu)

    def prepare(
        self,
        registry: ModelRegistry,
        menu: str,
        meter: EnergyMeter,
        progress: Callable[[str], None] | None,
    ) -> None:
        """Version 1 of the vision models, which both services' forks start from."""
        _VISION.prepare(registry, menu, meter, progress)

    def open(
        self,
        registry: ModelRegistry,
        menu: str,
        meter: EnergyMeter,
        seed: int,
        *,
        stress_test: bool = True,
    ) -> VisionSystem:
        """The models the services serve (their energy per inference, for the results)."""
        return VisionSystem(registry, meter, seed=seed, models=self.settings.models)

    def load(self, data: Path | None, samples: int | None) -> Scenario:
        """The scenario in file ``data`` (None: the shipped one), shortened to ``samples``."""
        scenario: Scenario = _VISION.load(data, samples)
        return scenario

    def stream(self, data: Any) -> PipelineStream:
        """``data``: a `Scenario`, a scenario file, or None for the shipped default."""
        from harmonia.systems.vision.scenario import load_scenario

        scenario = data if isinstance(data, Scenario) else load_scenario(data)
        vision = _VISION.stream(scenario)
        fields = {f.name: getattr(vision, f.name) for f in dataclasses.fields(Stream)}
        return PipelineStream(**fields, scenario=scenario)

    def _refuse(self) -> ValueError:
        """Why the one-service runner cannot serve the pipeline a sample at a time."""
        return ValueError(
            "the pipeline serves a frame through every stage: the replay lab runs it with "
            "run_approach (harmonia.replay.pipeline.replay_pipeline)"
        )

    def serve(self, system: Any) -> Any:
        """Refused: a frame goes through every stage (`run_approach` replays them)."""
        raise self._refuse()

    def predictions(self, system: Any, kind: str, stream: Any) -> Any:
        """Refused, as `serve`: there is no one-service oracle to feed."""
        raise self._refuse()

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
        """Replay approach ``name``: `replay_pipeline` under `approach_policies`, over
        ``stream`` (`stream`'s, or what it takes: a scenario, a scenario file)."""
        policies = approach_policies(name, self.settings)
        scenario = (stream if isinstance(stream, PipelineStream) else self.stream(stream)).scenario
        if scenario is None:
            raise ValueError("the pipeline replays a scenario: make its stream with stream()")
        replay = replay_pipeline(
            scenario,
            policies["fast"],
            policies["accurate"],
            registry=registry,
            meter=meter,
            seed=seed,
        )
        return approach_result(name, replay, meter.source, self.settings)

    def run_oracle(
        self, stream: Stream, registry: ModelRegistry, menu: str, meter: EnergyMeter
    ) -> None:
        """None: the one-service oracle does not bound an ensemble of adapting services."""
        return None


def approach_result(
    name: str, replay: PipelineReplay, energy_source: str, settings: Settings = SETTINGS
) -> ApproachResult:
    """A pipeline replay as a row of the lab's results: the ensemble's accuracy (and each
    service's), joules per frame end to end (retrains included; per stage in
    ``energy_per_stage``), the actions of both services, their models' compute per frame
    (``inference_ms``, the two services' latencies summed) and the mean window score of the
    ensemble's verdicts under the settings' objective."""
    services = {
        service: ServiceResult(
            policy=done.policy,
            metrics={"accuracy": done.accuracy},
            energy_j_per_inference=done.energy_j_per_inference,
            inference_ms=done.inference_ms,
            switches=done.switches,
            retrains=done.retrains,
            reuses=done.reuses,
            timeline=Timeline(
                models=list(done.models),
                versions=list(done.versions),
                actions=list(done.actions),
            ),
        )
        for service, done in replay.services.items()
    }
    objective = settings_policy("harmonia", settings).objective
    judged = np.column_stack([replay.correct.astype(float), np.zeros(replay.frames)])
    score = mean_window_score(
        judged,
        np.ones(replay.frames),
        replay.energy_per_frame,
        objective,
        settings.window,
        classification(objective.quality),
    )
    return ApproachResult(
        approach=name,
        energy_j_per_inference=replay.end_to_end_energy_j,
        metrics={
            "accuracy": replay.accuracy,
            **{f"accuracy.{s}": done.accuracy for s, done in replay.services.items()},
        },
        inference_ms=float(sum(done.inference_ms for done in replay.services.values())),
        switches=sum(done.switches for done in replay.services.values()),
        retrains=sum(done.retrains for done in replay.services.values()),
        reuses=sum(done.reuses for done in replay.services.values()),
        energy_source=energy_source,
        objective=score,
        seconds=replay.seconds,
        energy_per_stage=dict(replay.energy_per_stage),
        services=services,
    )


SPEC = PipelineSpec()


def summary_table(result: PipelineReplay) -> Mapping[str, Mapping[str, float]]:
    """A replay's figures in rows (the ensemble and each service): accuracy, joules per
    frame or inference, actions."""
    table: dict[str, dict[str, float]] = {
        "ensemble": {
            "accuracy": result.accuracy,
            "energy_j": result.end_to_end_energy_j,
            **{f"energy_j.{stage}": joules for stage, joules in result.energy_per_stage.items()},
        }
    }
    for service, done in result.services.items():
        table[service] = {
            "accuracy": done.accuracy,
            "energy_j": done.energy_j_per_inference,
            "switches": float(done.switches),
            "retrains": float(done.retrains),
            "reuses": float(done.reuses),
        }
    return table
