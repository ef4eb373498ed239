"""Everything ``harmonia.__all__`` promises can be imported from ``harmonia``."""

from __future__ import annotations

import subprocess
import sys

import harmonia


def test_every_public_name_resolves() -> None:
    for name in harmonia.__all__:
        assert getattr(harmonia, name) is not None, name


def test_importing_harmonia_does_not_load_scipy_or_river() -> None:
    code = "import sys, harmonia; print('scipy' in sys.modules, 'river' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
