"""A registry of trained traffic models, shared by the integration tests (training is slow)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harmonia.energy import auto_meter
from harmonia.registry import ModelRegistry
from harmonia.replay.lab import prepare


@pytest.fixture(scope="session")
def base_registry(data_dir: Path) -> ModelRegistry:
    return ModelRegistry(data_dir / "registry" / "traffic-harmonia")


@pytest.fixture(scope="session")
def vision_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory whose vision registry holds version 1 of every model."""
    root = tmp_path_factory.mktemp("harmonia-vision-data")
    prepare(root, "harmonia", auto_meter()[0], system="vision")
    return root


@pytest.fixture(scope="session")
def vision_registry(vision_data_dir: Path) -> ModelRegistry:
    return ModelRegistry(vision_data_dir / "registry" / "vision")
