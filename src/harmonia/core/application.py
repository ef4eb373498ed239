"""Applications as pipelines: stages ordered as a DAG, each served by services, each service
able to serve some models; instances of a service register at run time with their node.

The one-stage, one-service application (the traffic and vision systems) is the simple case,
and `Application.single` builds it from the payload applications were registered with before
pipelines existed, so those payloads and the sdk calls behind them keep working.

>>> app = Application.model_validate({
...     "name": "detect",
...     "stages": [
...         {"name": "ingest", "services": [{"name": "camera", "models": ["raw"]}]},
...         {"name": "classify", "after": ["ingest"],
...          "services": [{"name": "small", "models": ["tiny"]},
...                       {"name": "large", "models": ["big"]}]},
...         {"name": "aggregate", "after": ["classify"],
...          "services": [{"name": "vote", "models": ["majority"]}]},
...     ],
... })
>>> [stage.name for stage in app.stages]
['ingest', 'classify', 'aggregate']
>>> app.stage_of("large")
'classify'
>>> app.models
['raw', 'tiny', 'big', 'majority']
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:+-]{0,127}$"
"""Names of stages, models, services, instances, nodes and metrics: 1-128 letters, digits,
``. _ : + -``, starting with a letter or digit (they appear in URLs, topics and CSV headers)."""
APP_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
"""Application names are stricter: they name broker topics, exchanges and data folders."""
#: the stage and service of an application registered without stages (the simple case)
DEFAULT_STAGE = "main"
DEFAULT_SERVICE = "default"
MAX_STAGES = 64
MAX_SERVICES = 256

Name = Annotated[str, Field(pattern=NAME_PATTERN, max_length=128)]
AppName = Annotated[str, Field(pattern=APP_NAME_PATTERN, max_length=64)]


class Service(BaseModel):
    """A service of a stage: the models it may serve (its strategy chooses among them) and,
    optionally, where its effector listens (otherwise the application's)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    models: list[Name] = Field(min_length=1, max_length=100)
    effector_url: str | None = Field(default=None, max_length=512)
    #: instances known at registration (more register at run time)
    instances: list[Name] = Field(default_factory=list, max_length=1000)

    @model_validator(mode="after")
    def _distinct_models(self) -> Service:
        _refuse_repeats("models", self.models)
        return self


class Stage(BaseModel):
    """One step of the pipeline; ``after`` names the stages whose output it takes (fan-in when
    several, fan-out when several stages name the same one)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    after: list[Name] = Field(default_factory=list, max_length=MAX_STAGES)
    services: list[Service] = Field(min_length=1, max_length=MAX_SERVICES)


class Application(BaseModel):
    """An application's structure. Stages come out in topological order (a stage after the
    stages it follows), whatever order they were declared in."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: AppName
    owner: str = Field(default="", max_length=128, pattern=r"^[^\x00]*$")
    effector_url: str | None = Field(default=None, max_length=512)
    stages: list[Stage] = Field(min_length=1, max_length=MAX_STAGES)

    @model_validator(mode="after")
    def _a_dag(self) -> Application:
        object.__setattr__(self, "stages", ordered_stages(self.stages))
        return self

    @classmethod
    def single(
        cls,
        name: str,
        models: Sequence[str],
        *,
        owner: str = "",
        services: Sequence[dict[str, Any]] = (),
        effector_url: str | None = None,
    ) -> Application:
        """The one-stage application of the registration payload without stages: every
        listed service (``{"name", "instances"}``) serves all ``models``; none listed is one
        service named ``default``, the service the sdk reports by default."""
        listed = list(services) or [{"name": DEFAULT_SERVICE}]
        return cls.model_validate(
            {
                "name": name,
                "owner": owner,
                "effector_url": effector_url,
                "stages": [
                    {
                        "name": DEFAULT_STAGE,
                        "services": [{**service, "models": list(models)} for service in listed],
                    }
                ],
            }
        )

    # -- reading -------------------------------------------------------------------------
    def _pairs(self) -> Iterator[tuple[Stage, Service]]:
        for stage in self.stages:
            for service in stage.services:
                yield stage, service

    @property
    def services(self) -> list[Service]:
        """Every service, stage by stage."""
        return [service for _, service in self._pairs()]

    @property
    def models(self) -> list[str]:
        """Every model some service may serve, each once, in declaration order."""
        return list(dict.fromkeys(m for service in self.services for m in service.models))

    def service(self, name: str) -> Service:
        """The service named ``name``; a `KeyError` that lists the known ones otherwise."""
        for service in self.services:
            if service.name == name:
                return service
        known = ", ".join(service.name for service in self.services)
        raise KeyError(f"{self.name} has no service {name!r}; its services: {known}")

    def stage_of(self, service: str) -> str:
        """The stage that ``service`` belongs to."""
        for stage, candidate in self._pairs():
            if candidate.name == service:
                return stage.name
        self.service(service)  # raises the KeyError that names the known services
        raise AssertionError  # pragma: no cover

    def services_serving(self, model: str) -> list[str]:
        """The services that may serve ``model``."""
        return [service.name for service in self.services if model in service.models]


def ordered_stages(stages: Sequence[Stage]) -> list[Stage]:
    """``stages`` in topological order, once they are known to form a pipeline: distinct
    stage and service names, ``after`` naming stages, no cycle. A ValueError says what is
    wrong otherwise."""
    names = [stage.name for stage in stages]
    _refuse_repeats("stages", names)
    _refuse_repeats("services", [service.name for stage in stages for service in stage.services])
    for stage in stages:
        unknown = sorted(set(stage.after) - set(names))
        if unknown:
            raise ValueError(
                f"stage {stage.name!r} comes after {', '.join(map(repr, unknown))}, "
                f"which {'is not a stage' if len(unknown) == 1 else 'are not stages'}"
            )
    return _topological(stages)


def _refuse_repeats(what: str, names: Sequence[str]) -> None:
    repeated = sorted(name for name, count in Counter(names).items() if count > 1)
    if repeated:
        raise ValueError(f"{what} must have distinct names; repeated: {', '.join(repeated)}")


def _topological(stages: Sequence[Stage]) -> list[Stage]:
    """``stages`` with each after the ones it follows (declaration order among equals), or a
    ValueError naming the stages on a cycle."""
    by_name = {stage.name: stage for stage in stages}
    placed: list[Stage] = []
    done: set[str] = set()
    pending = list(stages)
    while pending:
        ready = [stage for stage in pending if set(stage.after) <= done]
        if not ready:
            cycle = ", ".join(sorted(stage.name for stage in pending))
            raise ValueError(f"stages form a cycle: {cycle} (a pipeline is a DAG)")
        for stage in ready:
            placed.append(by_name[stage.name])
            done.add(stage.name)
        pending = [stage for stage in pending if stage.name not in done]
    return placed
