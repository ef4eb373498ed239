"""The registry over real HTTP: ``harmonia models`` and ``harmonia datasets`` against a server
on a background thread, a damaged artifact refused by ``pull``, and systems on another domain
reusing versions trained in ``vendor`` through a `ServerRegistry` (the traffic system's own
lstm among them)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harmonia.cli import app
from harmonia.energy import EstimateMeter
from harmonia.registry import CURRENT, ModelRegistry
from harmonia.registry.client import CatalogClient
from harmonia.registry.remote import ServerRegistry
from harmonia.server.background import BackgroundServer
from harmonia.store import Store, sqlite_url
from harmonia.systems.serving import ServedModels
from harmonia.systems.traffic.system import TrafficSystem

ADMIN = "admin"


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Store]]:
    """A server with domains ``vendor`` and ``operator-production`` of ``acme``."""
    monkeypatch.delenv("HARMONIA_TOKEN", raising=False)
    store = Store(sqlite_url(tmp_path))
    store.create_org("acme", by="admin")
    for name in ("vendor", "operator-production"):
        store.create_domain(name, "acme", by="admin")
    try:
        with BackgroundServer(store, ADMIN, data_dir=tmp_path) as url:
            yield url, store
    finally:
        store.close()


def key(store: Store, domain: str, scope: str) -> str:
    return store.create_key(domain, scope, by="admin")[1]


def test_models_and_datasets_commands(server: tuple[str, Store], tmp_path: Path) -> None:
    url, store = server
    runner = CliRunner()

    def harmonia(*args: str, token: str = ADMIN) -> tuple[int, str]:
        result = runner.invoke(app, [*args, "--server", url, "--token", token])
        return result.exit_code, result.output

    model = tmp_path / "lstm.pt"
    model.write_bytes(bytes(range(256)) * 4096)  # 1 MiB
    code, out = harmonia(
        "models", "push", str(model), "--name", "lstm", "--domain", "vendor",
        "--label", "1.0", "--tag", "edge", "--metadata", '{"library": "torch"}',
    )  # fmt: skip
    assert code == 0, out
    assert "vendor/model/lstm@1" in out and hashlib.sha256(model.read_bytes()).hexdigest() in out
    code, out = harmonia("models", "list", "--domain", "vendor")
    assert code == 0 and "lstm" in out and "1.0" in out and "edge" in out, out

    pulled = tmp_path / "pulled.pt"
    code, out = harmonia(
        "models", "pull", "lstm", "latest", "--domain", "vendor", "-o", str(pulled)
    )
    assert code == 0, out
    assert pulled.read_bytes() == model.read_bytes() and "ok" in out

    with CatalogClient(url, ADMIN) as client:
        client.set_alias("vendor", "model", "lstm", "staging", 1)
    writer = key(store, "vendor", "write")
    code, out = harmonia("models", "promote", "lstm", "--domain", "vendor", token=writer)
    assert code == 2 and "403" in out and "scope 'admin'" in out, out
    admin = key(store, "vendor", "admin")
    code, out = harmonia(
        "models", "promote", "lstm", "--domain", "vendor", "--note", "ok", token=admin
    )
    assert code == 0 and "production none -> 1" in out and "approved by key:" in out, out

    data = tmp_path / "flows.csv"
    data.write_text("ts,flow\n0,12\n")
    code, out = harmonia("datasets", "push", str(data), "--name", "flows", "--domain", "vendor")
    assert code == 0 and "vendor/dataset/flows@1" in out, out
    code, out = harmonia("datasets", "list")
    assert code == 0 and "flows" in out and "lstm" not in out, out
    target = tmp_path / "out" / "flows.csv"
    code, out = harmonia("datasets", "pull", "flows", "--domain", "vendor", "-o", str(target))
    assert code == 0 and target.read_text() == "ts,flow\n0,12\n", out


def test_pull_refuses_a_damaged_artifact(server: tuple[str, Store], tmp_path: Path) -> None:
    url, _ = server
    model = tmp_path / "svm.bin"
    model.write_bytes(b"svm weights " * 200_000)  # 2.4 MB: several chunks
    with CatalogClient(url, ADMIN) as client:
        pushed = client.push("vendor", "model", "svm", model)
    [stored] = [p for p in (tmp_path / "artifacts").rglob("*") if p.is_file()]
    damaged = bytearray(stored.read_bytes())
    damaged[-10] ^= 0xFF
    stored.write_bytes(bytes(damaged))
    target = tmp_path / "pulled.bin"
    command = ["models", "pull", "svm", "--domain", "vendor", "-o", str(target)]
    result = CliRunner().invoke(app, [*command, "--server", url, "--token", ADMIN])
    assert result.exit_code == 2
    assert re.search(r"cut short|damaged", result.output), result.output
    assert not target.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".pulled")] == []
    assert pushed["sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()


def test_a_live_system_reuses_a_version_trained_in_another_domain(
    server: tuple[str, Store], tmp_path: Path
) -> None:
    """``vendor`` trains two versions of ``lstm`` (its registry pushes them, the server
    numbers them, their training energy goes with them) and shares the model with
    ``operator-production``, whose live system has never seen it: ``reuse_version`` of v1
    fetches it from the server, checked, into the system's own registry."""
    url, store = server

    def saver(text: str) -> object:
        return lambda directory: (directory / "model.txt").write_text(text)

    with CatalogClient(url, key(store, "vendor", "write")) as vendor_key:
        vendor = ServerRegistry(tmp_path / "vendor", vendor_key, "vendor", energy_source="rapl")
        for i, r2 in enumerate((0.81, 0.93), start=1):
            version = vendor.register(
                "lstm",
                saver(f"weights {i}"),  # type: ignore[arg-type]
                fingerprint=(0.1 * i, 0.5, 0.9),
                metrics={"r2": r2, "training_joules": 100.0 * i, "training_seconds": 3.0},
                params={"hidden": 32},
            )
            assert version.version == i
    with CatalogClient(url, key(store, "vendor", "admin")) as vendor_admin:
        vendor_admin.grant("vendor", "model", "lstm", "operator-production")
        energy = vendor_admin.record_energy(
            "vendor", "model", "lstm", 1, phase="evaluation", joules=5.0
        )
        assert (energy["training_j"], energy["evaluation_j"]) == (100.0, 5.0)
        assert energy["runs"][0]["source"] == "rapl"

    with CatalogClient(url, key(store, "operator-production", "read")) as operator_key:
        operator = ServerRegistry(tmp_path / "operator", operator_key, "vendor")
        assert operator.models() == []
        served = ServedModels(operator, ["lstm"], lambda d: (d / "model.txt").read_text())
        knowledge = served.knowledge(["lstm"], "lstm")  # lists the server's versions too
        assert sorted(v.version for v in knowledge.versions["lstm"]) == [1, 2]
        served.reuse("lstm", 1, reason="today's data looks like v1's")
        assert served.model("lstm") == "weights 1"
        assert operator.alias("lstm", CURRENT).version == 1  # type: ignore[union-attr]
        fetched = operator.get("lstm", 2)
        assert fetched.metrics == {"r2": 0.93, "training_joules": 200.0, "training_seconds": 3.0}
        assert fetched.fingerprint == (0.2, 0.5, 0.9)
        assert fetched.params == {"hidden": 32}


def test_a_traffic_model_trained_in_vendor_is_reused_in_operator_production(
    server: tuple[str, Store], tmp_path: Path, base_registry: ModelRegistry
) -> None:
    """The traffic system's lstm, trained in ``vendor`` (the session's registry), published
    there and shared with ``operator-production``, where a traffic system that never trained
    it brings it back with ``reuse_version`` and serves forecasts from it."""
    url, store = server
    with CatalogClient(url, key(store, "vendor", "write")) as client:
        vendor = ServerRegistry(tmp_path / "vendor", client, "vendor", energy_source="estimate")
        published = vendor.publish(base_registry, "lstm", 1)
    assert published.version == 1
    trained = base_registry.get("lstm", 1)
    with CatalogClient(url, key(store, "vendor", "admin")) as client:
        client.grant("vendor", "model", "lstm", "operator-production")
        energy = client.record_energy("vendor", "model", "lstm", 1, phase="evaluation", joules=1.5)
    assert energy["training_j"] == pytest.approx(trained.metrics["training_joules"])

    with CatalogClient(url, key(store, "operator-production", "read")) as client:
        registry = ServerRegistry(tmp_path / "operator", client, "vendor")
        system = TrafficSystem(registry, "harmonia", EstimateMeter(), models=["lstm"])
        system.reuse("lstm", 1, reason="reuse_version: v1 fits today's traffic")
        forecast = system.predict([float(v) for v in range(100, 105)])
    assert isinstance(forecast, float)
    assert registry.get("lstm", 1).metrics == trained.metrics
    assert registry.get("lstm", 1).fingerprint == trained.fingerprint
    assert registry.alias("lstm", CURRENT).version == 1  # type: ignore[union-attr]
