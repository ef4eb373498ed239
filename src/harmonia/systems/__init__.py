"""Reference managed systems: each an ordinary sdk user, registered under the
``harmonia.systems`` entry-point group by a `ReferenceSystem` that says how to run it.

The CLI (``harmonia replay``, ``harmonia run``), the server's runs and the replay lab find
systems only through that group, so adding one is one entry point plus its module::

    [project.entry-points."harmonia.systems"]
    pipeline = "harmonia.systems.pipeline:SYSTEM"

The object an entry point names must import light (no torch, no scikit-learn): the server
lists systems without the lab installed. What is heavy is named as ``"module:attribute"``
and imported only when a system is replayed or run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from harmonia.core.application import Application
from harmonia.core.errors import HarmoniaError
from harmonia.plugins import SYSTEMS, load_plugin, plugin_names

if TYPE_CHECKING:
    from harmonia.replay.systems import ReplaySpec
    from harmonia.systems.live import LiveRun


class LiveOptionError(HarmoniaError, ValueError):
    """A live run asked of a system what it cannot do (an option its runner does not
    support); the CLI says so in one line (exit 2). The shipped systems support them all."""


class LiveRunner(Protocol):
    """Runs a system live against a server until its data is served, or round and round
    until stopped (``harmonia run``, ``harmonia demo``)."""

    def __call__(
        self,
        server: str,
        app: str,
        token: str,
        *,
        data: Path | None,
        data_dir: Path,
        menu: str,
        rate: float | None,
        loop: bool = False,
        limit: int | None = None,
    ) -> LiveRun:
        """``data``: the system's own data file, or None for the shipped default; a bad
        file raises ValueError before anything runs. ``loop``: start the data again at its
        end; ``limit``: serve at most that many inputs."""
        ...


@dataclass(frozen=True)
class ReferenceSystem:
    """One reference system, as the CLI, the server and the replay lab need it."""

    #: the entry-point name, the ``system`` of its policies and the prefix of its presets
    name: str
    #: one line for help texts
    summary: str
    #: the models it serves, cheapest first
    models: tuple[str, ...]
    #: what one served input is called in reports ("observations", "images")
    unit: str
    #: what its data file is (``--data``), and the default
    data_help: str
    #: ``"module:attribute"`` of its replay spec (a `harmonia.replay.systems.ReplaySpec`)
    replay: str
    #: ``"module:attribute"`` of its `LiveRunner`
    live: str
    #: its model menus, the default first; empty when it has one set of models
    menus: tuple[str, ...] = ()
    #: a pipeline's services that adapt, each with the models it may serve (cheapest first)
    #: and its own shipped policy ``<name>-<service>``; empty for a one-service system,
    #: whose one service serves ``models`` under ``<name>-live``
    services: tuple[tuple[str, tuple[str, ...]], ...] = ()
    #: ``"module:attribute"`` of a function ``name -> Application`` that gives a pipeline's
    #: structure; empty for a one-service system (one stage, one service, ``models``)
    structure: str = ""

    def application(self, name: str) -> Application:
        """The structure it registers as application ``name``."""
        if self.structure:
            build: Callable[[str], Application] = _resolve(self.structure)
            return build(name)
        return Application.single(name, self.models, owner="reference-systems")

    @property
    def live_preset(self) -> str:
        """The shipped policy a live run starts with (a pipeline's first adapting service's:
        `live_presets` has one per service)."""
        return next(iter(self.live_presets.values()), f"{self.name}-live")

    @property
    def live_presets(self) -> dict[str, str]:
        """A pipeline's shipped policy per adapting service; empty for a one-service system."""
        return {service: f"{self.name}-{service}" for service, _ in self.services}

    def presets(self) -> list[str]:
        """The names of the shipped policies for this system."""
        from harmonia.policies import PRESETS

        return sorted(
            p.stem for p in PRESETS.glob(f"{self.name}-*") if p.suffix in {".yaml", ".json"}
        )

    def replay_spec(self) -> ReplaySpec:
        """How the replay lab drives it (imports the system's models)."""
        spec: ReplaySpec = _resolve(self.replay)
        return spec

    def run_live(
        self,
        server: str,
        app: str,
        token: str,
        *,
        data: Path | None = None,
        data_dir: Path,
        menu: str = "",
        rate: float | None = None,
        loop: bool = False,
        limit: int | None = None,
    ) -> LiveRun:
        """Run it live against ``server`` as application ``app`` (imports its models);
        ``loop`` plays its data round and round, ``limit`` stops after so many inputs."""
        runner: LiveRunner = _resolve(self.live)
        return runner(
            server,
            app,
            token,
            data=data,
            data_dir=data_dir,
            menu=menu or (self.menus[0] if self.menus else ""),
            rate=rate,
            loop=loop,
            limit=limit,
        )


def _resolve(reference: str) -> Any:
    module, _, attribute = reference.partition(":")
    return getattr(import_module(module), attribute)


def system_names() -> list[str]:
    """The names of the installed reference systems, sorted."""
    return plugin_names(SYSTEMS)


def reference_system(name: str) -> ReferenceSystem:
    """The system registered as ``name``; `UnknownPluginError` (a LookupError) names those
    installed."""
    system = load_plugin(SYSTEMS, name)
    if not isinstance(system, ReferenceSystem) or system.name != name:
        raise TypeError(f"entry point {name!r} in {SYSTEMS!r} is not a ReferenceSystem named so")
    return system


__all__ = [
    "LiveOptionError",
    "LiveRunner",
    "ReferenceSystem",
    "reference_system",
    "system_names",
]
