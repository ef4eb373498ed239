"""A `ModelRegistry` backed by a Harmonia server's catalog: the local directory is a cache of
one domain's models on the server, so a live system's ``reuse_version`` can bring back a
version trained elsewhere (another run, another machine, another domain that shared it).

- ``get`` (and so ``reuse``) fetches a version missing here: its archive is downloaded,
  checked against its sha256, unpacked beside the others and given its ``version.json`` from
  the server's metadata, under the server's number.
- ``versions`` lists the server's versions too (fetching those missing), so that the
  engine's knowledge, built from it, can choose an archived version it never trained.
- ``register`` pushes first and stores the version locally under the number the server
  gave, so that numbers agree everywhere; the training energy it measured
  (``training_joules``) is recorded on the server with the version. ``publish`` does the
  same for a version another registry holds (models trained before, on local disk).

A version travels as a tar archive of its directory (without ``version.json``). Aliases and
the history stay local: which version a system serves is the system's own state.
"""

from __future__ import annotations

import shutil
import tarfile
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from harmonia.registry import _storage
from harmonia.registry.client import CatalogClient, CatalogClientError
from harmonia.registry.errors import RegistryError, VersionNotFound
from harmonia.registry.registry import METADATA_FILE, ModelRegistry, RegisteredVersion

#: metrics that are energy figures; the others are quality figures
ENERGY_METRICS = ("energy", "joules")


class ServerRegistry(ModelRegistry):
    """Models of ``domain`` on the server ``client`` talks to, cached under ``root``."""

    def __init__(
        self,
        root: str | Path,
        client: CatalogClient,
        domain: str,
        *,
        clock: Callable[[], float] = time.time,
        energy_source: str = "reported",
    ) -> None:
        super().__init__(root, clock=clock)
        self.client = client
        self.domain = domain
        self.energy_source = energy_source

    def __repr__(self) -> str:
        return f"ServerRegistry({str(self.root)!r}, {self.client.server!r}, {self.domain!r})"

    # -- reading: fetch what is missing -----------------------------------------------------
    def get(self, model: str, version: int) -> RegisteredVersion:
        try:
            return super().get(model, version)
        except VersionNotFound:
            self.fetch(model, version)
            return super().get(model, version)

    def versions(self, model: str) -> list[RegisteredVersion]:
        here = {v.version for v in super().versions(model)}
        for described in self.client.versions(self.domain, "model", model):
            if described["version"] not in here:
                self.fetch(model, int(described["version"]))
        return super().versions(model)

    def fetch(self, model: str, version: int) -> RegisteredVersion:
        """Download version ``version`` of ``model`` from the server into this registry."""
        model_dir = self._model_dir(model)
        try:
            described = self.client.version(self.domain, "model", model, version)
        except CatalogClientError as error:
            if error.status == 404:
                raise VersionNotFound(model, version, self._numbers(model_dir)) from None
            raise
        model_dir.mkdir(parents=True, exist_ok=True)
        staging = model_dir / f".fetch-{uuid.uuid4().hex}"
        staging.mkdir()
        try:
            archive = staging / "version.tar"
            self.client.pull(self.domain, "model", model, version, archive)
            with tarfile.open(archive) as tar:
                tar.extractall(staging, filter="data")
            archive.unlink()
            if (staging / METADATA_FILE).exists():
                raise RegistryError(f"the archive of {model} v{version} carries {METADATA_FILE}")
            record = {**_record(described), "model": model, "version": version}
            with self._lock:
                _storage.write_json_atomic(staging / METADATA_FILE, record)
                target = model_dir / f"v{version}"
                if not (target / METADATA_FILE).exists():
                    shutil.rmtree(target, ignore_errors=True)
                    staging.replace(target)
                    self._log("fetched", model, version, server=self.client.server)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return super().get(model, version)

    # -- writing: the server numbers versions -----------------------------------------------
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
        """Save a new version, push it, and keep it here under the server's number."""
        record: dict[str, Any] = {
            "model": model,
            "fingerprint": _storage.clean_fingerprint(fingerprint),
            "metrics": _storage.clean_metrics(metrics or {}),
            "params": _storage.as_json(dict(params or {}), "params"),
            "training": _storage.as_json(dict(training or {}), "training"),
        }
        return self._push(model, save, record)

    def publish(self, source: ModelRegistry, model: str, version: int) -> RegisteredVersion:
        """Push a version another registry holds (a replay lab's, a system's on local disk)
        to the server, and keep it here under the server's number."""
        found = source.get(model, version)

        def copy(directory: Path) -> None:
            for entry in found.path.iterdir():
                if entry.name == METADATA_FILE:
                    continue
                if entry.is_dir():
                    shutil.copytree(entry, directory / entry.name)
                else:
                    shutil.copy2(entry, directory / entry.name)

        record = {
            "model": model,
            "fingerprint": list(found.fingerprint),
            "metrics": dict(found.metrics),
            "params": dict(found.params),
            "training": dict(found.training),
        }
        return self._push(model, copy, record)

    def _push(
        self, model: str, save: Callable[[Path], None], record: dict[str, Any]
    ) -> RegisteredVersion:
        model_dir = self._model_dir(model)
        model_dir.mkdir(parents=True, exist_ok=True)
        staging = model_dir / f".push-{uuid.uuid4().hex}"
        staging.mkdir()
        try:
            save(staging)
            if (staging / METADATA_FILE).exists():
                raise RegistryError(f"save() must not write {METADATA_FILE}: the registry does")
            with tempfile.TemporaryDirectory() as tmp:
                archive = Path(tmp) / f"{model}.tar"
                with tarfile.open(archive, "w") as tar:
                    for entry in sorted(staging.iterdir()):
                        tar.add(entry, arcname=entry.name)
                pushed = self.client.push(self.domain, "model", model, archive, _metadata(record))
            version = int(pushed["version"])
            metrics = record["metrics"]
            if "training_joules" in metrics:
                self.client.record_energy(
                    self.domain,
                    "model",
                    model,
                    version,
                    phase="training",
                    joules=metrics["training_joules"],
                    seconds=metrics.get("training_seconds", 0.0),
                    source=self.energy_source,
                )
            record.update(version=version, created=float(pushed["created"]))
            with self._lock:
                _storage.write_json_atomic(staging / METADATA_FILE, record)
                target = model_dir / f"v{version}"
                shutil.rmtree(target, ignore_errors=True)  # an unfinished local allocation
                staging.replace(target)
                self._log("registered", model, version, server=self.client.server)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return super().get(model, version)


def _metadata(record: Mapping[str, Any]) -> dict[str, Any]:
    """A local version's record as the catalog's metadata: metrics split into quality and
    energy figures."""
    metrics = record.get("metrics", {})
    energy = {k: v for k, v in metrics.items() if any(w in k for w in ENERGY_METRICS)}
    return {
        "parameters": record.get("params", {}),
        "quality": {k: v for k, v in metrics.items() if k not in energy},
        "energy": energy,
        "fingerprint": record.get("fingerprint", []),
        "training": record.get("training", {}),
    }


def _record(described: Mapping[str, Any]) -> dict[str, Any]:
    """The catalog's description of a version as a local ``version.json``."""
    metadata = described.get("metadata", {})
    return {
        "created": float(described["created"]),
        "fingerprint": list(metadata.get("fingerprint", [])),
        "metrics": {**metadata.get("quality", {}), **metadata.get("energy", {})},
        "params": dict(metadata.get("parameters", {})),
        "training": dict(metadata.get("training", {})),
    }
