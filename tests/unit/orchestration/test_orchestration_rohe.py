"""ROHE's add_node and add_service documents: its shipped examples convert, in both of its
spellings, and a bad document is refused with the field named."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from placement_cases import ROHE, rohe_json, rohe_yaml

from harmonia.orchestration import InventoryError
from harmonia.orchestration.loaders import load_nodes, load_services, parse_nodes, parse_services
from harmonia.orchestration.rohe import nodes_from_rohe, services_from_rohe


def _document(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((ROHE / name).read_text())
    return document


def test_the_shipped_node_examples_convert() -> None:
    nodes, _ = rohe_json()
    assert [n.name for n in nodes][:2] == ["RaspberryPi_02", "RaspberryPi_03"]
    assert len(nodes) == 9
    pi, nano, xavier = nodes[0], nodes[4], nodes[8]
    assert (pi.cores, pi.cpu_millicores, pi.memory_mib, pi.accelerators) == (
        [1000] * 4,
        4000,
        4096,
        [],
    )
    assert [(a.name, a.type, a.capacity) for a in nano.accelerators] == [("GPU0", "gpu", 100)]
    assert (len(xavier.cores), xavier.memory_mib) == (8, 16384)
    assert pi.labels == {"mac_address": "dc:a6:32:07:ab:92"}


def test_the_shipped_service_examples_convert() -> None:
    _, services = rohe_json()
    by_name = {s.name: s for s in services}
    assert len(services) == 9
    assert sum(s.replicas for s in services) == 15
    bts = by_name["bts_dataproc_service"]
    assert (bts.cpu_millicores, bts.cores, bts.memory_mib, bts.replicas) == (
        1000,
        [1000, 50, 50, 50],
        300,
        2,
    )
    assert bts.labels == {"application": "bts"}
    assert bts.accelerator is None  # ROHE's {"gpu": 0}
    inference = by_name["object_detection_inference_service"]
    assert inference.accelerator is not None
    assert (inference.accelerator.type, inference.accelerator.share) == ("gpu", 15)
    assert (inference.image, inference.ports) == ("rdsea/od_inf:2.0", [4002])


def test_the_yaml_templates_spell_fields_otherwise_and_read_the_same() -> None:
    nodes, services = rohe_yaml()
    assert len(nodes) == 10 and nodes[5].accelerators[0].type == "gpu"
    by_name = {s.name: s for s in services}
    assert by_name["kpi_inference_service"].cores == [1000, 800, 800, 800]
    assert by_name["object_detection_inference_service"].accelerator is not None


def test_used_capacity_is_taken_off() -> None:
    document = _document("add_node.json")
    node = document["data"]["node5"]
    node["cores"]["used"] = [50, 0, 0, 0]
    node["cpu"]["used"] = 500
    node["memory"]["used"]["rss"] = 1000
    node["accelerator"]["GPU0"]["used"] = 40
    converted = nodes_from_rohe(document)[4]
    assert converted.cores == [500, 1000, 1000, 1000]
    assert (converted.cpu_millicores, converted.memory_mib) == (3500, 3096)
    assert converted.accelerators[0].capacity == 60


def test_sensitivity_codes() -> None:
    document = _document("add_service.json")
    for code, expected in ((1, ["cpu"]), (2, ["memory"]), (3, ["cpu", "memory"])):
        document["data"]["bts"]["bts_dataproc_service"]["sensitivity"] = code
        assert services_from_rohe(document)[0].sensitivity == expected


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d["data"]["node3"]["cpu"].update(capacity="lots"), "data.node3.cpu.capacity"),
        (lambda d: d["data"]["node2"].pop("memory"), "data.node2.memory"),
        (
            lambda d: d["data"]["node1"]["memory"]["capacity"].pop("rss"),
            "data.node1.memory.capacity",
        ),
        (
            lambda d: d["data"]["node9"]["accelerator"]["GPU0"].pop("accelerator_type"),
            "data.node9.accelerator.GPU0.accelerator_type",
        ),
        (lambda d: d["data"]["node4"].update(node_name="bad name!"), "data.node4.name"),
    ],
)
def test_a_bad_node_document_names_the_field(change, field: str) -> None:  # type: ignore[no-untyped-def]
    document = copy.deepcopy(_document("add_node.json"))
    change(document)
    with pytest.raises(InventoryError) as caught:
        parse_nodes(document)
    assert field in {issue.path for issue in caught.value.issues}, str(caught.value)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda s: s.update(replicas="two"), "data.kpi.kpi_web_service.replicas"),
        (lambda s: s.update(sensitivity=7), "data.kpi.kpi_web_service.sensitivity"),
        (lambda s: s.pop("cpu_required"), "data.kpi.kpi_web_service.cpu_required"),
        (
            lambda s: s.update(memory_required={"vms": 3}),
            "data.kpi.kpi_web_service.memory_required",
        ),
        (
            lambda s: s.update(accelerator_required={"gpu": 5, "tpu": 5}),
            "data.kpi.kpi_web_service.accelerator_required",
        ),
    ],
)
def test_a_bad_service_document_names_the_field(change, field: str) -> None:  # type: ignore[no-untyped-def]
    document = copy.deepcopy(_document("add_service.json"))
    change(document["data"]["kpi"]["kpi_web_service"])
    with pytest.raises(InventoryError) as caught:
        parse_services(document)
    assert field in {issue.path for issue in caught.value.issues}, str(caught.value)


def test_harmonia_yaml_inventories_load(tmp_path: Path) -> None:
    (tmp_path / "nodes.yaml").write_text(
        "nodes:\n"
        "  - {name: edge-1, cores: 4, memory_mib: 4096, labels: {site: lab}}\n"
        "  - name: gpu-1\n"
        "    cores: [1000, 1000]\n"
        "    memory_mib: 8192\n"
        "    accelerators: [{name: gpu0, type: gpu}]\n"
        "    power: {idle_w: 5, peak_w: 15}\n"
    )
    (tmp_path / "services.yaml").write_text(
        "services:\n"
        "  - {name: web, cpu_millicores: 400, replicas: 2, anti_affinity: [web]}\n"
        "  - {name: infer, cores: [500], accelerator: {type: gpu, share: 25}}\n"
    )
    nodes = load_nodes(tmp_path / "nodes.yaml")
    services = load_services(tmp_path / "services.yaml")
    assert [n.name for n in nodes] == ["edge-1", "gpu-1"]
    assert services[1].cpu_millicores == 500


def test_loading_errors_name_the_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "nodes.yaml"
    bad.write_text("nodes:\n  - {name: a, cores: 4}\n")
    with pytest.raises(InventoryError, match=r"(?s)nodes.yaml.*nodes\.0\.memory_mib"):
        load_nodes(bad)
    bad.write_text("machines: []\n")
    with pytest.raises(InventoryError, match="'nodes'"):
        load_nodes(bad)
    bad.write_text("nodes: [\n")
    with pytest.raises(InventoryError, match="neither YAML nor JSON"):
        load_nodes(bad)
    with pytest.raises(InventoryError, match="cannot read"):
        load_services(tmp_path / "missing.yaml")
