"""The model registry: numbered versions of each model on disk, aliases, and a history.

A version is a directory the caller fills with its artifacts, plus a ``version.json`` the
registry writes last, so a directory without one is a registration in progress (or one that
crashed) and is never listed. Artifacts are immutable once registered; metadata (measured
metrics) can be added later. Every change is appended to ``history.jsonl``, so a replay or a
server can say afterwards which version served when, and why it was chosen.
"""

from __future__ import annotations

import re
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harmonia.core.versions import ModelVersion
from harmonia.registry import _storage
from harmonia.registry.errors import InvalidMetadata, RegistryError, VersionNotFound

#: the alias of the version a model serves; every other version is archived
CURRENT = "current"

METADATA_FILE = "version.json"
ALIASES_FILE = "aliases.json"
HISTORY_FILE = "history.jsonl"
_VERSION_DIR = re.compile(r"v([1-9][0-9]*)")

# One lock per registry root in this process, so that two `ModelRegistry` objects opened on
# the same root still serialise their read-modify-write of aliases and metadata.
_LOCKS: dict[Path, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _lock_for(root: Path) -> threading.Lock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(root.resolve(), threading.Lock())


@dataclass(frozen=True)
class RegisteredVersion:
    """One registered version of a model: the `ModelVersion` it is, where its artifacts are,
    and what only the registry keeps apart (metrics and params, merged in its metadata).

    ``model``, ``version``, ``created`` and ``fingerprint`` read through to
    ``model_version``, whose ``metadata`` is the params, then the metrics over them.
    """

    model_version: ModelVersion
    path: Path
    #: measured values, e.g. ``r2``, ``energy_j_per_inference``, ``latency_ms``
    metrics: dict[str, float] = field(default_factory=dict)
    #: hyperparameters
    params: dict[str, Any] = field(default_factory=dict)
    #: what it was trained on: rows, source, seed...
    training: dict[str, Any] = field(default_factory=dict)

    @property
    def model(self) -> str:
        return self.model_version.model

    @property
    def version(self) -> int:
        return self.model_version.version

    @property
    def created(self) -> float:
        return self.model_version.created

    @property
    def fingerprint(self) -> tuple[float, ...]:
        """Quantile sketch of the training data (see `harmonia.core.knowledge.fingerprint`)."""
        return self.model_version.fingerprint


class ModelRegistry:
    """Versions, aliases and history of models, kept under one root directory.

    Layout: ``root/models/<model>/v<N>/`` (artifacts and ``version.json``),
    ``root/models/<model>/aliases.json`` and ``root/history.jsonl``.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     registry = ModelRegistry(tmp, clock=lambda: 100.0)
    ...     first = registry.register("svm", lambda d: (d / "model.txt").write_text("C=1"))
    ...     second = registry.register(
    ...         "svm", lambda d: (d / "model.txt").write_text("C=2"), metrics={"r2": 0.91}
    ...     )
    ...     registry.set_alias("svm", CURRENT, second.version, reason="better r2")
    ...     current = registry.alias("svm")
    ...     print(current.version, current.metrics, (current.path / "model.txt").read_text())
    ...     print([v.version for v in registry.archived("svm")])
    ...     print([event["event"] for event in registry.history("svm")])
    2 {'r2': 0.91} C=2
    [1]
    ['registered', 'registered', 'alias']
    """

    def __init__(self, root: str | Path, *, clock: Callable[[], float] = time.time) -> None:
        self.root = Path(root)
        self._models = self.root / "models"
        self._history = self.root / HISTORY_FILE
        self._clock = clock
        self._models.mkdir(parents=True, exist_ok=True)
        self._lock = _lock_for(self.root)

    def __repr__(self) -> str:
        return f"ModelRegistry({str(self.root)!r})"

    # -- registering ---------------------------------------------------------------------
    def register(
        self,
        model: str,
        save: Callable[[Path], None],
        *,
        fingerprint: tuple[float, ...] = (),
        metrics: Mapping[str, float] | None = None,
        params: Mapping[str, Any] | None = None,
        training: Mapping[str, Any] | None = None,
    ) -> RegisteredVersion:
        """Store a new version of ``model``: ``save(directory)`` writes its artifacts.

        Metadata is checked before anything is created. If ``save`` fails, its partial
        directory is removed, nothing is logged and the error propagates.
        """
        model_dir = self._model_dir(model)
        record: dict[str, Any] = {
            "model": model,
            "fingerprint": _storage.clean_fingerprint(fingerprint),
            "metrics": _storage.clean_metrics(metrics or {}),
            "params": _storage.as_json(dict(params or {}), "params"),
            "training": _storage.as_json(dict(training or {}), "training"),
        }
        version, directory = self._allocate(model_dir)
        try:
            save(directory)
            metadata = directory / METADATA_FILE
            if metadata.exists():
                raise RegistryError(f"save() must not write {METADATA_FILE}: the registry does")
            record.update(version=version, created=float(self._clock()))
            with self._lock:
                _storage.write_json_atomic(metadata, record)
                self._log("registered", model, version)
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        return _from_record(model, version, directory, record)

    def update_metrics(self, model: str, version: int, /, **metrics: float) -> RegisteredVersion:
        """Merge measured ``metrics`` into a version's metadata; its artifacts stay as they are.

        Positional-only ``model`` and ``version``, so that any metric name can be a keyword.
        """
        if not metrics:
            raise InvalidMetadata("update_metrics() needs at least one metric")
        cleaned = _storage.clean_metrics(metrics)
        with self._lock:
            directory = self._existing_dir(model, version)
            record = self._read_record(model, version, directory)
            record["metrics"] = {**record.get("metrics", {}), **cleaned}
            _storage.write_json_atomic(directory / METADATA_FILE, record)
            self._log("metrics", model, version, metrics=cleaned)
        return _from_record(model, version, directory, record)

    # -- reading -------------------------------------------------------------------------
    def models(self) -> list[str]:
        """Names of the models with at least one registered version, sorted."""
        names = (p.name for p in self._models.iterdir() if p.is_dir())
        return sorted(n for n in names if _is_name(n) and self._numbers(self._models / n))

    def versions(self, model: str) -> list[RegisteredVersion]:
        """Every registered version of ``model``, oldest first (none for an unknown model)."""
        model_dir = self._model_dir(model)
        return [self._load(model, v, model_dir / f"v{v}") for v in self._numbers(model_dir)]

    def get(self, model: str, version: int) -> RegisteredVersion:
        """One version, or `VersionNotFound` listing the versions there are."""
        return self._load(model, version, self._existing_dir(model, version))

    def latest(self, model: str) -> RegisteredVersion | None:
        """The highest-numbered version of ``model``, or None if it has none."""
        numbers = self._numbers(self._model_dir(model))
        return self.get(model, numbers[-1]) if numbers else None

    # -- aliases -------------------------------------------------------------------------
    def set_alias(self, model: str, alias: str, version: int, reason: str = "") -> None:
        """Point ``alias`` of ``model`` at an existing ``version``; logged with ``reason``.

        Every call is logged, even one that leaves the alias where it was: the reason of a
        confirmation is history too.
        """
        _storage.check_name(alias, "alias")
        with self._lock:
            self._existing_dir(model, version)
            aliases = self._read_aliases(model)
            previous = aliases.get(alias)
            aliases[alias] = version
            _storage.write_json_atomic(self._model_dir(model) / ALIASES_FILE, aliases)
            change = {"alias": alias, "from": previous, "to": version, "reason": reason}
            self._log("alias", model, version, **change)

    def alias(self, model: str, alias: str = CURRENT) -> RegisteredVersion | None:
        """The version ``alias`` points to, or None if the alias is not set."""
        _storage.check_name(alias, "alias")
        version = self._read_aliases(model).get(alias)
        return None if version is None else self.get(model, version)

    def aliases(self, model: str) -> dict[str, int]:
        """Every alias of ``model`` and the version it points to."""
        return self._read_aliases(model)

    def archived(self, model: str) -> list[RegisteredVersion]:
        """The versions the ``current`` alias does not point to (all of them if it is unset)."""
        current = self._read_aliases(model).get(CURRENT)
        return [v for v in self.versions(model) if v.version != current]

    # -- history and forks ---------------------------------------------------------------
    def history(self, model: str | None = None) -> list[dict[str, Any]]:
        """Every event in the order it happened, optionally only those of ``model``."""
        if model is not None:
            _storage.check_name(model, "model")
        events = _storage.read_lines(self._history)
        return events if model is None else [e for e in events if e.get("model") == model]

    def fork(self, root: str | Path) -> ModelRegistry:
        """Copy the whole registry to ``root`` (absent or empty) and open the copy.

        A replay forks one base registry per approach, so that each starts from the same
        versions and none sees what another registered. Registrations still in progress are
        not copied.
        """
        target = Path(root)
        if target.exists() and (not target.is_dir() or any(target.iterdir())):
            raise RegistryError(f"cannot fork into {target}: it exists and is not empty")
        if target.resolve().is_relative_to(self.root.resolve()):
            raise RegistryError(f"cannot fork into {target}: it is inside {self.root}")
        with self._lock:
            shutil.copytree(self.root, target, ignore=self._unfinished, dirs_exist_ok=True)
        return ModelRegistry(target, clock=self._clock)

    # -- internals -----------------------------------------------------------------------
    def _model_dir(self, model: str) -> Path:
        return self._models / _storage.check_name(model, "model")

    def _numbers(self, model_dir: Path, *, complete: bool = True) -> list[int]:
        """Version numbers under ``model_dir``; ``complete`` keeps those with metadata."""
        if not model_dir.is_dir():
            return []
        numbers = []
        for entry in model_dir.iterdir():
            match = _VERSION_DIR.fullmatch(entry.name)
            if match and entry.is_dir() and (not complete or (entry / METADATA_FILE).is_file()):
                numbers.append(int(match.group(1)))
        return sorted(numbers)

    def _allocate(self, model_dir: Path) -> tuple[int, Path]:
        """Claim the next version directory; ``mkdir`` fails for all but one claimant."""
        model_dir.mkdir(parents=True, exist_ok=True)
        number = max(self._numbers(model_dir, complete=False), default=0) + 1
        while True:
            directory = model_dir / f"v{number}"
            try:
                directory.mkdir(exist_ok=False)
            except FileExistsError:
                number += 1
                continue
            return number, directory

    def _existing_dir(self, model: str, version: int) -> Path:
        """The directory of a registered version; no path is built before the checks."""
        model_dir = self._model_dir(model)
        version = _storage.check_version(version)
        if version >= 1:
            directory = model_dir / f"v{version}"
            if (directory / METADATA_FILE).is_file():
                return directory
        raise VersionNotFound(model, version, self._numbers(model_dir))

    def _read_record(self, model: str, version: int, directory: Path) -> dict[str, Any]:
        path = directory / METADATA_FILE
        try:
            record = _storage.read_json(path)
        except FileNotFoundError:
            raise VersionNotFound(model, version, self._numbers(directory.parent)) from None
        except ValueError as error:
            raise RegistryError(f"{path}: damaged metadata: {error}") from None
        if not isinstance(record, dict):
            raise RegistryError(f"{path}: damaged metadata: not a JSON object")
        return record

    def _load(self, model: str, version: int, directory: Path) -> RegisteredVersion:
        return _from_record(model, version, directory, self._read_record(model, version, directory))

    def _read_aliases(self, model: str) -> dict[str, int]:
        path = self._model_dir(model) / ALIASES_FILE
        try:
            aliases = _storage.read_json(path)
        except FileNotFoundError:
            return {}
        except ValueError as error:
            raise RegistryError(f"{path}: damaged aliases: {error}") from None
        if not isinstance(aliases, dict) or not all(
            isinstance(k, str) and type(v) is int for k, v in aliases.items()
        ):
            raise RegistryError(f"{path}: damaged aliases: expected an object of versions")
        return aliases

    def _log(self, event: str, model: str, version: int, **fields: Any) -> None:
        """Append one event; callers hold the lock."""
        record = {"ts": float(self._clock()), "event": event, "model": model, "version": version}
        _storage.append_line(self._history, {**record, **fields})

    def _unfinished(self, directory: str, names: list[str]) -> set[str]:
        """What `fork` leaves out: temporary files, and version directories without metadata."""
        skipped = {n for n in names if n.startswith(".") and n.endswith(".tmp")}
        if Path(directory).parent == self._models:
            skipped |= {
                n
                for n in names
                if _VERSION_DIR.fullmatch(n) and not (Path(directory, n) / METADATA_FILE).exists()
            }
        return skipped


def _is_name(value: str) -> bool:
    try:
        _storage.check_name(value, "model")
    except ValueError:
        return False
    return True


def _from_record(
    model: str, version: int, directory: Path, record: dict[str, Any]
) -> RegisteredVersion:
    """A `RegisteredVersion` from its metadata; the directory, not the file, says which one
    it is."""
    try:
        metrics = {str(k): float(v) for k, v in record.get("metrics", {}).items()}
        params = dict(record.get("params", {}))
        return RegisteredVersion(
            ModelVersion(
                model,
                version,
                created=float(record["created"]),
                fingerprint=tuple(float(v) for v in record.get("fingerprint", ())),
                metadata={**params, **metrics},
            ),
            path=directory,
            metrics=metrics,
            params=params,
            training=dict(record.get("training", {})),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise RegistryError(f"{directory / METADATA_FILE}: damaged metadata: {error!r}") from None
