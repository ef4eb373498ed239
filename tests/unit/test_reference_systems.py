"""Reference systems are found through the ``harmonia.systems`` entry points, and every list
of systems (CLI, server runs, replay lab) comes from there."""

from __future__ import annotations

import subprocess
import sys

import pytest

from harmonia.core.errors import UnknownPluginError
from harmonia.replay.approaches import settings_for
from harmonia.replay.systems import spec_for
from harmonia.server.runs import SYSTEMS
from harmonia.systems import ReferenceSystem, reference_system, system_names


def test_the_built_in_systems_are_registered_under_their_names() -> None:
    assert {"traffic", "vision"} <= set(system_names())
    for name in system_names():
        system = reference_system(name)
        assert isinstance(system, ReferenceSystem)
        assert system.name == name
        assert system.live_preset in system.presets()


def test_every_list_of_systems_comes_from_the_entry_points() -> None:
    assert {name: list(reference_system(name).models) for name in system_names()} == SYSTEMS
    for name in system_names():
        assert spec_for(name).name == name
        assert settings_for(name).models == list(reference_system(name).models)


def test_an_unknown_system_is_named_with_those_installed() -> None:
    with pytest.raises(
        UnknownPluginError, match="unknown system 'nope'; available: pipeline, traffic"
    ):
        reference_system("nope")
    with pytest.raises(ValueError, match="unknown system 'nope'; known: pipeline, traffic"):
        spec_for("nope")


def test_listing_systems_loads_no_model_library() -> None:
    code = (
        "import sys; from harmonia.systems import reference_system, system_names; "
        "[reference_system(n) for n in system_names()]; "
        "print(*[m in sys.modules for m in ('torch', 'sklearn')])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
