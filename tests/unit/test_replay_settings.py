"""The replay lab's settings make each approach's policy: a window shared by every approach,
and harmonia's own decision window where it is set."""

from __future__ import annotations

import dataclasses

from harmonia.replay.approaches import VISION, settings_policy


def test_harmonia_decides_on_its_own_window_and_the_others_on_the_shared_one() -> None:
    settings = dataclasses.replace(VISION, window=50, harmonia_window=25)
    assert settings_policy("harmonia", settings).window.samples == 25
    assert settings_policy("single-small", settings).window.samples == 50
    assert settings_policy("harmone", settings).window.samples == 50
    unset = dataclasses.replace(settings, harmonia_window=None)
    assert settings_policy("harmonia", unset).window.samples == 50
