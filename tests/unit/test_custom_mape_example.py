"""The template of docs/harmonica.md (examples/custom_mape): registered through its entry
point, found by Harmonia's plugin loader, and conformant like every strategy."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harmonia import plugins
from harmonia.policies import load_policy
from harmonia.testing import check_strategy

EXAMPLE = Path(__file__).parents[2] / "examples" / "custom_mape"


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The example as ``pip install -e examples/custom_mape`` leaves it, in-process: its
    source on the path and a distribution whose entry points name it."""
    info = tmp_path / "harmonia_custom_mape-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: harmonia-custom-mape\nVersion: 0.1.0\n"
    )
    pyproject = (EXAMPLE / "pyproject.toml").read_text()
    assert 'custom_mape = "custom_mape.strategy:CustomMapeStrategy"' in pyproject
    (info / "entry_points.txt").write_text(
        "[harmonia.strategies]\ncustom_mape = custom_mape.strategy:CustomMapeStrategy\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.syspath_prepend(str(EXAMPLE / "src"))
    plugins._group.cache_clear()
    yield
    plugins._group.cache_clear()
    for name in [m for m in sys.modules if m.startswith("custom_mape")]:
        del sys.modules[name]


def test_the_template_is_a_strategy_plugin(installed: None) -> None:
    assert "custom_mape" in plugins.plugin_names(plugins.STRATEGIES)
    strategy = plugins.create_plugin(plugins.STRATEGIES, "custom_mape", min_gain=0.01)
    assert strategy.name == "custom_mape"
    check_strategy("custom_mape")


def test_its_policy_names_it(installed: None) -> None:
    policy = load_policy(EXAMPLE / "policy.yaml")
    assert policy.strategy == "custom_mape"
