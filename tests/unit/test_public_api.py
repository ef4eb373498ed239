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


def test_the_sdk_and_the_core_share_one_action_kind() -> None:
    from harmonia.core.actions import ActionKind
    from harmonia.sdk import ActionKind as SdkActionKind

    assert SdkActionKind is ActionKind


def test_the_conformance_kit_is_public_and_imports_no_pytest_or_heavy_library() -> None:
    """`harmonia.testing` (not re-exported from ``harmonia``): a plugin author's kit."""
    heavy = ("pytest", "scipy", "river", "yaml", "torch")
    code = (
        "import sys, harmonia.testing as t; [getattr(t, n) for n in t.__all__]; "
        f"print(*[m in sys.modules for m in {heavy!r}])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False"] * len(heavy)


def test_one_model_version_type_from_the_core_to_the_store_and_the_registry() -> None:
    """A model version is `harmonia.ModelVersion` wherever it appears: the engine's
    knowledge, what the store keeps, and what a registered version is."""
    import harmonia.registry
    import harmonia.store
    from harmonia.core.versions import ModelVersion
    from harmonia.registry import RegisteredVersion

    assert harmonia.ModelVersion is harmonia.core.ModelVersion is ModelVersion
    assert "ModelVersion" in harmonia.__all__
    for gone in ("VersionInfo", "StoredVersion"):
        assert not hasattr(harmonia, gone) and not hasattr(harmonia.store, gone)
    assert not hasattr(harmonia.registry, "ModelVersion")
    assert RegisteredVersion.__dataclass_fields__["model_version"].type in (
        ModelVersion,
        "ModelVersion",
    )
