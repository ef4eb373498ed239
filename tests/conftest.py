"""Fixtures shared by every test package (training is slow: done once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harmonia.energy import auto_meter
from harmonia.replay.lab import prepare


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory whose harmonia-menu traffic registry holds version 1 of every model."""
    root = tmp_path_factory.mktemp("harmonia-data")
    prepare(root, "harmonia", auto_meter()[0])
    return root
