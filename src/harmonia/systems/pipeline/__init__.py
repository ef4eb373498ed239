"""The pipeline reference system: camera frames through three stages, each its own sdk user.

* ``camera`` (service ``conditions``) applies the scenario's camera conditions (dark, fog,
  noise, blur: the vision system's scenario file) to each frame and starts its trace;
* ``classify`` has two services, an ensemble that classifies every frame: ``fast`` (the
  vision system's small and medium CNNs) and ``accurate`` (medium and large), each adapting
  under its own policy (``pipeline-fast``, ``pipeline-accurate``);
* ``aggregate`` (service ``vote``) keeps the more confident of the two answers and reports
  whether the ensemble was right.

Every sample carries its frame's trace id (made by the camera, passed on as a W3C
``traceparent``), its stage and its service, so the server follows a frame end to end.
Live (``harmonia run pipeline``), each stage runs in its own process; the replay lab
replays it in event time with one engine per classify service
(`harmonia.replay.pipeline.replay_pipeline`).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from harmonia.systems import ReferenceSystem

if TYPE_CHECKING:
    from harmonia.core.application import Application

CAMERA, CLASSIFY, AGGREGATE = "camera", "classify", "aggregate"
#: the camera stage's service and the one "model" it runs
CAMERA_SERVICE, CAMERA_MODEL = "conditions", "camera"
#: the aggregate stage's service and its vote
VOTE_SERVICE, VOTE_MODEL = "vote", "confidence-vote"
#: the classify services, each with the vision models it may serve, cheapest first
SERVICES: dict[str, tuple[str, ...]] = {
    "fast": ("small", "medium"),
    "accurate": ("medium", "large"),
}

#: the application's structure, as ``examples/apps/pipeline.yaml`` declares it (what
#: ``POST /api/v1/apps`` takes)
STRUCTURE: dict[str, Any] = {
    "name": "pipeline",
    "owner": "vision-team",
    "stages": [
        {"name": CAMERA, "services": [{"name": CAMERA_SERVICE, "models": [CAMERA_MODEL]}]},
        {
            "name": CLASSIFY,
            "after": [CAMERA],
            "services": [
                {"name": service, "models": list(models)} for service, models in SERVICES.items()
            ],
        },
        {
            "name": AGGREGATE,
            "after": [CLASSIFY],
            "services": [{"name": VOTE_SERVICE, "models": [VOTE_MODEL]}],
        },
    ],
}

#: registered under ``harmonia.systems`` as ``pipeline``
SYSTEM = ReferenceSystem(
    name="pipeline",
    summary="camera → classify (a fast and an accurate CNN service, an ensemble) → aggregate",
    models=("small", "medium", "large"),
    unit="frames",
    data_help="a vision scenario file (default: the vision system's shipped scenario)",
    replay="harmonia.replay.pipeline_lab:SPEC",
    live="harmonia.systems.pipeline.live:run",
    services=tuple(SERVICES.items()),
    structure="harmonia.systems.pipeline:application",
)


def application(name: str = "pipeline") -> Application:
    """The pipeline's `Application` (registered as ``name``)."""
    from harmonia.core.application import Application

    return Application.model_validate({**STRUCTURE, "name": name})


# The rest loads on first use: the entry point above must import without torch.
_HOME = {
    "Aggregator": "stages",
    "Answer": "stages",
    "Camera": "stages",
    "Classifier": "stages",
    "Frame": "stages",
    "Verdict": "stages",
    "camera_stage": "stages",
    "vote": "stages",
    "run_live": "live",
}


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{module}"), name)


__all__ = [
    "AGGREGATE",
    "CAMERA",
    "CAMERA_MODEL",
    "CAMERA_SERVICE",
    "CLASSIFY",
    "SERVICES",
    "STRUCTURE",
    "SYSTEM",
    "VOTE_MODEL",
    "VOTE_SERVICE",
    "Aggregator",
    "Answer",
    "Camera",
    "Classifier",
    "Frame",
    "Verdict",
    "application",
    "camera_stage",
    "run_live",
    "vote",
]
