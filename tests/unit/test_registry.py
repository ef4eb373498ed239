"""The model registry, on real files: versions, aliases, history, forks and their guarantees."""

from __future__ import annotations

import itertools
import json
import math
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from harmonia.core.errors import HarmoniaError
from harmonia.core.knowledge import fingerprint
from harmonia.core.versions import ModelVersion
from harmonia.registry import (
    CURRENT,
    InvalidMetadata,
    InvalidName,
    ModelRegistry,
    RegisteredVersion,
    RegistryError,
    VersionNotFound,
)


def writes(text: str) -> Callable[[Path], None]:
    """A ``save`` that writes ``text`` to ``model.txt``."""

    def save(directory: Path) -> None:
        (directory / "model.txt").write_text(text)

    return save


def writes_file(name: str) -> Callable[[Path], None]:
    """A ``save`` that writes an empty JSON object to ``name``."""

    def save(directory: Path) -> None:
        (directory / name).write_text("{}")

    return save


def ticking() -> Callable[[], float]:
    """A clock that advances one second per reading, so events are told apart."""
    counter = itertools.count(1000)
    return lambda: float(next(counter))


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    return ModelRegistry(tmp_path / "registry", clock=ticking())


# -- registering ---------------------------------------------------------------------------
def test_register_writes_artifacts_and_metadata(registry: ModelRegistry) -> None:
    version = registry.register(
        "lstm",
        writes("weights"),
        fingerprint=(1.0, 2.0, 3.0),
        metrics={"r2": 0.8, "latency_ms": 3},
        params={"units": 32, "layers": [1, 2]},
        training={"rows": 500, "source": "traffic.csv", "seed": 7},
    )
    assert version.model == "lstm"
    assert version.version == 1
    assert version.path == registry.root / "models" / "lstm" / "v1"
    assert (version.path / "model.txt").read_text() == "weights"
    assert version.metrics == {"r2": 0.8, "latency_ms": 3.0}
    assert version.params == {"units": 32, "layers": [1, 2]}
    assert version.training == {"rows": 500, "source": "traffic.csv", "seed": 7}
    assert version.fingerprint == (1.0, 2.0, 3.0)
    metadata = json.loads((version.path / "version.json").read_text())
    assert metadata["metrics"] == {"r2": 0.8, "latency_ms": 3.0}
    assert metadata["training"]["rows"] == 500
    assert registry.get("lstm", 1) == version


def test_versions_increment_per_model(registry: ModelRegistry) -> None:
    numbers = [registry.register("svm", writes(str(i))).version for i in range(3)]
    assert numbers == [1, 2, 3]
    assert registry.register("linear", writes("x")).version == 1
    assert [v.version for v in registry.versions("svm")] == [1, 2, 3]
    assert registry.models() == ["linear", "svm"]
    latest = registry.latest("svm")
    assert latest is not None
    assert latest.version == 3
    assert (latest.path / "model.txt").read_text() == "2"


def test_unknown_model_has_no_versions(registry: ModelRegistry) -> None:
    assert registry.versions("nothing") == []
    assert registry.latest("nothing") is None
    assert registry.alias("nothing") is None
    assert registry.archived("nothing") == []
    assert registry.models() == []


def test_failing_save_leaves_no_version_and_no_history(registry: ModelRegistry) -> None:
    registry.register("svm", writes("good"))

    def broken(directory: Path) -> None:
        (directory / "half.bin").write_bytes(b"\0")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        registry.register("svm", broken)
    assert [v.version for v in registry.versions("svm")] == [1]
    assert not (registry.root / "models" / "svm" / "v2").exists()
    assert [e["event"] for e in registry.history()] == ["registered"]
    assert registry.register("svm", writes("again")).version == 2


def test_failing_save_of_a_new_model_lists_no_model(registry: ModelRegistry) -> None:
    def broken(directory: Path) -> None:
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        registry.register("svm", broken)
    assert registry.models() == []
    assert registry.history() == []


def test_save_may_not_write_the_metadata_file(registry: ModelRegistry) -> None:
    with pytest.raises(RegistryError, match=r"version\.json"):
        registry.register("svm", writes_file("version.json"))
    assert registry.versions("svm") == []


# -- aliases -------------------------------------------------------------------------------
def test_set_alias_alias_and_archived(registry: ModelRegistry) -> None:
    for i in range(3):
        registry.register("svm", writes(str(i)))
    assert registry.alias("svm") is None
    assert [v.version for v in registry.archived("svm")] == [1, 2, 3]

    registry.set_alias("svm", CURRENT, 2, reason="best r2")
    current = registry.alias("svm")
    assert current is not None
    assert current.version == 2
    assert [v.version for v in registry.archived("svm")] == [1, 3]

    registry.set_alias("svm", "canary", 3)
    canary = registry.alias("svm", "canary")
    assert canary is not None
    assert canary.version == 3
    assert [v.version for v in registry.archived("svm")] == [1, 3], "only current counts"
    assert registry.aliases("svm") == {"current": 2, "canary": 3}
    stored = json.loads((registry.root / "models" / "svm" / "aliases.json").read_text())
    assert stored == {"current": 2, "canary": 3}


def test_alias_needs_an_existing_version(registry: ModelRegistry) -> None:
    registry.register("svm", writes("x"))
    with pytest.raises(VersionNotFound):
        registry.set_alias("svm", CURRENT, 5)
    with pytest.raises(VersionNotFound):
        registry.set_alias("other", CURRENT, 1)
    assert registry.alias("svm") is None
    assert [e["event"] for e in registry.history()] == ["registered"]


def test_alias_events_say_from_to_and_why(registry: ModelRegistry) -> None:
    registry.register("svm", writes("a"))
    registry.register("svm", writes("b"))
    registry.set_alias("svm", CURRENT, 1, reason="initial")
    registry.set_alias("svm", CURRENT, 2, reason="retrained on drift")
    events = [e for e in registry.history("svm") if e["event"] == "alias"]
    assert [(e["alias"], e["from"], e["to"], e["reason"]) for e in events] == [
        ("current", None, 1, "initial"),
        ("current", 1, 2, "retrained on drift"),
    ]
    assert events[1]["version"] == 2


# -- metrics -------------------------------------------------------------------------------
def test_update_metrics_persists_and_is_logged(registry: ModelRegistry) -> None:
    registry.register("svm", writes("x"), metrics={"r2": 0.5})
    updated = registry.update_metrics("svm", 1, energy_j_per_inference=0.02, r2=0.7)
    assert updated.metrics == {"r2": 0.7, "energy_j_per_inference": 0.02}
    assert registry.get("svm", 1).metrics == updated.metrics
    assert (updated.path / "model.txt").read_text() == "x", "artifacts are untouched"
    event = registry.history()[-1]
    assert event["event"] == "metrics"
    assert (event["model"], event["version"]) == ("svm", 1)
    assert event["metrics"] == {"energy_j_per_inference": 0.02, "r2": 0.7}


def test_update_metrics_accepts_any_metric_name(registry: ModelRegistry) -> None:
    registry.register("svm", writes("x"))
    updated = registry.update_metrics("svm", 1, model=1.0, version=2.0)
    assert updated.metrics == {"model": 1.0, "version": 2.0}


def test_update_metrics_of_a_missing_version(registry: ModelRegistry) -> None:
    registry.register("svm", writes("x"))
    with pytest.raises(VersionNotFound):
        registry.update_metrics("svm", 2, r2=0.1)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_metric_is_rejected(registry: ModelRegistry, bad: float) -> None:
    with pytest.raises(ValueError, match="r2"):
        registry.register("svm", writes("x"), metrics={"r2": bad})
    assert registry.versions("svm") == []
    assert not (registry.root / "models" / "svm").exists() or not any(
        (registry.root / "models" / "svm").iterdir()
    )
    registry.register("svm", writes("x"))
    with pytest.raises(InvalidMetadata, match="latency_ms"):
        registry.update_metrics("svm", 1, latency_ms=bad)
    assert registry.get("svm", 1).metrics == {}


def test_metadata_must_be_json(registry: ModelRegistry) -> None:
    with pytest.raises(InvalidMetadata, match="params"):
        registry.register("svm", writes("x"), params={"kernel": object()})
    with pytest.raises(InvalidMetadata, match="training"):
        registry.register("svm", writes("x"), training={"frac": math.nan})
    with pytest.raises(InvalidMetadata, match="r2"):
        registry.register("svm", writes("x"), metrics={"r2": "high"})  # type: ignore[dict-item]
    assert registry.versions("svm") == []
    assert registry.history() == []


# -- history -------------------------------------------------------------------------------
def test_history_is_ordered_and_append_only(registry: ModelRegistry) -> None:
    registry.register("svm", writes("a"))
    registry.register("linear", writes("b"))
    path = registry.root / "history.jsonl"
    before = path.read_text()
    registry.set_alias("svm", CURRENT, 1, reason="first")
    registry.update_metrics("linear", 1, r2=0.4)
    registry.register("svm", writes("c"))
    after = path.read_text()
    assert after.startswith(before), "earlier lines are never rewritten"
    assert len(after.splitlines()) == 5
    events = registry.history()
    assert [(e["event"], e["model"], e["version"]) for e in events] == [
        ("registered", "svm", 1),
        ("registered", "linear", 1),
        ("alias", "svm", 1),
        ("metrics", "linear", 1),
        ("registered", "svm", 2),
    ]
    stamps = [e["ts"] for e in events]
    assert stamps == sorted(stamps)
    assert [e["event"] for e in registry.history("linear")] == ["registered", "metrics"]
    assert all(json.loads(line) for line in after.splitlines())


def test_an_incomplete_last_history_line_is_ignored(registry: ModelRegistry) -> None:
    registry.register("svm", writes("a"))
    with (registry.root / "history.jsonl").open("a") as file:
        file.write('{"event": "regis')
    assert [e["event"] for e in registry.history()] == ["registered"]


# -- persistence and forks -----------------------------------------------------------------
def test_a_fresh_registry_on_the_same_root_sees_everything(tmp_path: Path) -> None:
    first = ModelRegistry(tmp_path, clock=ticking())
    registered = first.register("svm", writes("a"), fingerprint=(0.5,), metrics={"r2": 0.3})
    first.register("svm", writes("b"))
    first.set_alias("svm", CURRENT, 1, reason="r")
    first.update_metrics("svm", 2, r2=0.9)

    second = ModelRegistry(str(tmp_path))
    assert second.models() == ["svm"]
    assert second.get("svm", 1) == registered
    assert second.get("svm", 2).metrics == {"r2": 0.9}
    current = second.alias("svm")
    assert current is not None
    assert current.version == 1
    assert second.history() == first.history()
    assert second.register("svm", writes("c")).version == 3


def test_fork_copies_versions_and_aliases_and_evolves_apart(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    registry.register("svm", writes("a"), metrics={"r2": 0.5})
    registry.register("svm", writes("b"))
    registry.set_alias("svm", CURRENT, 2)

    fork = registry.fork(tmp_path / "fork")
    assert fork.root == tmp_path / "fork"
    assert [v.version for v in fork.versions("svm")] == [1, 2]
    assert (fork.get("svm", 1).path / "model.txt").read_text() == "a"
    assert fork.get("svm", 1).path.is_relative_to(fork.root)
    assert fork.aliases("svm") == {"current": 2}
    assert fork.history() == registry.history()

    fork.register("svm", writes("fork-only"))
    fork.set_alias("svm", CURRENT, 1, reason="roll back")
    fork.update_metrics("svm", 1, r2=0.1)
    registry.register("linear", writes("base-only"))

    assert [v.version for v in registry.versions("svm")] == [1, 2]
    assert registry.aliases("svm") == {"current": 2}
    assert registry.get("svm", 1).metrics == {"r2": 0.5}
    assert [v.version for v in fork.versions("svm")] == [1, 2, 3]
    assert fork.models() == ["svm"]
    assert registry.models() == ["linear", "svm"]
    assert len(fork.history()) == 6
    assert len(registry.history()) == 4


def test_fork_into_an_empty_directory(registry: ModelRegistry, tmp_path: Path) -> None:
    registry.register("svm", writes("a"))
    target = tmp_path / "empty"
    target.mkdir()
    assert [v.version for v in registry.fork(target).versions("svm")] == [1]


def test_fork_refuses_a_non_empty_target(registry: ModelRegistry, tmp_path: Path) -> None:
    target = tmp_path / "busy"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    with pytest.raises(RegistryError, match="not empty"):
        registry.fork(target)
    assert [p.name for p in target.iterdir()] == ["keep.txt"]
    with pytest.raises(RegistryError):
        registry.fork(registry.root / "models" / "inside")


def test_fork_leaves_out_unfinished_versions(registry: ModelRegistry, tmp_path: Path) -> None:
    registry.register("svm", writes("a"))
    (registry.root / "models" / "svm" / "v2").mkdir()  # a registration in progress
    fork = registry.fork(tmp_path / "fork")
    assert not (fork.root / "models" / "svm" / "v2").exists()
    assert fork.register("svm", writes("b")).version == 2


# -- names and lookups ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "bad", ["../x", "a/b", "", "x" * 65, "..", ".hidden", "a\\b", "svm\n", "-x", "a b"]
)
def test_invalid_names_are_rejected(registry: ModelRegistry, bad: str) -> None:
    with pytest.raises(InvalidName) as caught:
        registry.register(bad, writes("x"))
    assert repr(bad) in str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, HarmoniaError)
    with pytest.raises(InvalidName):
        registry.versions(bad)
    with pytest.raises(InvalidName):
        registry.history(bad)
    registry.register("svm", writes("x"))
    with pytest.raises(InvalidName):
        registry.set_alias("svm", bad, 1)
    with pytest.raises(InvalidName):
        registry.alias("svm", bad)
    assert sorted(p.name for p in (registry.root / "models").iterdir()) == ["svm"]


def test_longest_valid_name_is_accepted(registry: ModelRegistry) -> None:
    name = "a" + "b_.-9" * 12 + "xyz"
    assert len(name) == 64
    assert registry.register(name, writes("x")).model == name


def test_version_not_found_names_the_known_versions(registry: ModelRegistry) -> None:
    for _ in range(3):
        registry.register("svm", writes("x"))
    with pytest.raises(VersionNotFound) as caught:
        registry.get("svm", 7)
    message = str(caught.value)
    assert "'svm'" in message
    assert "7" in message
    assert "1, 2, 3" in message
    assert caught.value.known == [1, 2, 3]
    assert isinstance(caught.value, LookupError)
    with pytest.raises(VersionNotFound, match="none"):
        registry.get("other", 1)
    with pytest.raises(VersionNotFound):
        registry.get("svm", 0)
    with pytest.raises(VersionNotFound):
        registry.get("svm", -1)
    with pytest.raises(TypeError):
        registry.get("svm", "1")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        registry.get("svm", True)


# -- concurrency ---------------------------------------------------------------------------
def test_concurrent_registers_get_unique_contiguous_versions(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    threads, per_thread = 8, 5
    results: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(threads)
    guard = threading.Lock()

    def work(worker: int) -> None:
        start.wait()
        try:
            for i in range(per_thread):
                version = registry.register("svm", writes(f"{worker}-{i}"))
                with guard:
                    results.append(version.version)
        except BaseException as error:
            errors.append(error)

    pool = [threading.Thread(target=work, args=(w,)) for w in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()

    total = threads * per_thread
    assert errors == []
    assert sorted(results) == list(range(1, total + 1))
    assert [v.version for v in registry.versions("svm")] == list(range(1, total + 1))
    contents = {(v.path / "model.txt").read_text() for v in registry.versions("svm")}
    assert len(contents) == total, "no two registrations shared a directory"
    registered = [e["version"] for e in registry.history() if e["event"] == "registered"]
    assert sorted(registered) == list(range(1, total + 1))


def test_concurrent_alias_and_metric_updates_lose_nothing(registry: ModelRegistry) -> None:
    registry.register("svm", writes("x"))
    registry.register("svm", writes("y"))

    def work(worker: int) -> None:
        for i in range(10):
            registry.update_metrics("svm", 1, **{f"m{worker}_{i}": float(i)})
            registry.set_alias("svm", f"a{worker}", 1 + i % 2)

    pool = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    assert len(registry.get("svm", 1).metrics) == 40
    assert registry.aliases("svm") == {f"a{w}": 2 for w in range(4)}
    assert len(registry.history()) == 2 + 80


# -- the engine's view ---------------------------------------------------------------------
def test_a_registered_version_is_a_model_version(registry: ModelRegistry) -> None:
    sketch = fingerprint(list(range(100)), size=16)
    version = registry.register(
        "svm",
        writes("x"),
        fingerprint=sketch,
        metrics={"r2": 0.9},
        params={"C": 1.0},
        training={"rows": 100},
    )
    info = version.model_version
    assert isinstance(info, ModelVersion)
    assert info.fingerprint == sketch == version.fingerprint
    assert (info.model, info.version, info.created) == ("svm", 1, version.created)
    assert (version.model, version.version) == ("svm", 1)
    assert info.metadata == {"r2": 0.9, "C": 1.0}
    assert info.service == "default"
    assert registry.get("svm", 1).model_version == info


def test_model_version_is_frozen(registry: ModelRegistry) -> None:
    version: RegisteredVersion = registry.register("svm", writes("x"))
    with pytest.raises(AttributeError):
        version.path = Path("elsewhere")  # type: ignore[misc]
    with pytest.raises(AttributeError):
        version.version = 2  # type: ignore[misc]
    with pytest.raises(AttributeError):
        version.model_version.version = 2  # type: ignore[misc]
