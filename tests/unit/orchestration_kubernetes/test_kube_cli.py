"""``harmonia deploy render`` and ``apply`` on ROHE's shipped examples (tests/data/rohe);
apply against a fake API server is in tests/integration/test_kubernetes_apply.py."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from harmonia.cli import app
from harmonia.orchestration.kubernetes import parse_manifests, validate_manifests

DATA = Path(__file__).parents[2] / "data" / "rohe"
INPUTS = ["--nodes", str(DATA / "add_node.yaml"), "--services", str(DATA / "add_service.yaml")]


@pytest.fixture(autouse=True)
def _no_cluster_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no .env of the checkout
    for name in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "HARMONIA_KUBE_CONTEXT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HARMONIA_KUBE_CONFIG", str(tmp_path / "no-kubeconfig"))


def test_render_writes_valid_manifests_to_stdout() -> None:
    result = CliRunner().invoke(app, ["deploy", "render", *INPUTS, "--namespace", "ml"])
    assert result.exit_code == 0, result.output
    documents = parse_manifests(result.stdout)
    validate_manifests(documents)
    assert {d["metadata"]["namespace"] for d in documents} == {"ml"}
    services = [d for d in documents if d["kind"] == "Service"]
    assert len(services) == 9  # every ROHE example service has a replica placed
    assert "rendered 9 Services" in result.stderr


def test_render_from_a_saved_plan_equals_rendering_while_placing(tmp_path: Path) -> None:
    runner = CliRunner()
    planned = runner.invoke(app, ["deploy", "plan", *INPUTS, "--placer", "worst-fit", "--json"])
    assert planned.exit_code == 0, planned.output
    (tmp_path / "plan.json").write_text(planned.stdout)
    from_plan = runner.invoke(
        app, ["deploy", "render", *INPUTS, "--plan", "plan.json", "--out", "a.yaml"]
    )
    placing = runner.invoke(
        app, ["deploy", "render", *INPUTS, "--placer", "worst-fit", "--out", "b.yaml"]
    )
    assert from_plan.exit_code == placing.exit_code == 0, from_plan.output + placing.output
    assert (tmp_path / "a.yaml").read_text() == (tmp_path / "b.yaml").read_text()


def test_render_refuses_what_cannot_be_rendered_naming_the_field(tmp_path: Path) -> None:
    fpga = {"type": "fpga", "share": 10}
    services = {"services": [{"name": "api", "cpu_millicores": 100, "accelerator": fpga}]}
    nodes = {
        "nodes": [
            {
                "name": "n1",
                "cores": 2,
                "memory_mib": 512,
                "accelerators": [{"name": "f0", "type": "fpga"}],
            }
        ]
    }
    (tmp_path / "services.yaml").write_text(yaml.safe_dump(services))
    (tmp_path / "nodes.yaml").write_text(yaml.safe_dump(nodes))
    result = CliRunner().invoke(
        app, ["deploy", "render", "--nodes", "nodes.yaml", "--services", "services.yaml"]
    )
    assert result.exit_code == 2
    assert "services.0.accelerator.type: 'fpga' has no extended resource" in result.stderr


def test_apply_wants_manifests_or_inputs_but_not_both(tmp_path: Path) -> None:
    runner = CliRunner()
    neither = runner.invoke(app, ["deploy", "apply"])
    both = runner.invoke(app, ["deploy", "apply", "--manifests", "m.yaml", *INPUTS])
    half = runner.invoke(app, ["deploy", "apply", "--nodes", str(DATA / "add_node.yaml")])
    for result in (neither, both, half):
        assert result.exit_code == 2
        assert "give --manifests FILE, or --nodes and --services" in result.stderr


def test_apply_validates_the_manifests_file_first(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: api}\nspec: {ports: [{port: 80}]}\n"
    )
    result = CliRunner().invoke(app, ["deploy", "apply", "--manifests", "m.yaml"])
    assert result.exit_code == 2
    assert "m.yaml: invalid manifests" in result.stderr
    assert "[0] Service/api spec.selector: is missing" in result.stderr


def test_apply_with_no_kubeconfig_exits_1_saying_so() -> None:
    result = CliRunner().invoke(app, ["deploy", "apply", *INPUTS, "--dry-run"])
    assert result.exit_code == 1, result.output
    assert "no Kubernetes cluster is configured" in result.stderr
    assert "no-kubeconfig" in result.stderr


def test_apply_with_no_cluster_answering_exits_1_naming_context_and_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": f"https://127.0.0.1:{port}"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "edge-lab", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "edge-lab",
    }
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump(config))
    monkeypatch.setenv("HARMONIA_KUBE_CONFIG", str(tmp_path / "kubeconfig"))
    monkeypatch.setenv("HARMONIA_KUBE_CONNECT_TIMEOUT_S", "1")
    result = CliRunner().invoke(app, ["deploy", "apply", *INPUTS, "--context", "edge-lab"])
    assert result.exit_code == 1, result.output
    assert (
        f"no Kubernetes cluster answered at https://127.0.0.1:{port} (context 'edge-lab')"
        in result.stderr
    )
