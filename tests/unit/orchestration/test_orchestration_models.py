"""Nodes and service requirements: shorthands, defaults, and errors that name the field."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from harmonia.orchestration import Node, Plan, PowerModel, ServiceRequirement


def test_a_core_count_stands_for_full_cores_and_cpu_defaults_to_their_sum() -> None:
    node = Node(name="pi", cores=4, memory_mib=4096)
    assert node.cores == [1000] * 4
    assert node.cpu_millicores == 4000


def test_cpu_may_keep_some_back_but_not_exceed_the_cores() -> None:
    assert Node(name="a", cores=[1000, 1000], cpu_millicores=1500, memory_mib=1).cpu_millicores
    with pytest.raises(ValidationError, match="exceeds the sum of the cores"):
        Node(name="a", cores=[1000], cpu_millicores=1500, memory_mib=1)


def test_labels_carry_site_and_architecture() -> None:
    node = Node.model_validate(
        {
            "name": "x",
            "cores": 2,
            "memory_mib": 1,
            "labels": {"site": "lab", "architecture": "arm64"},
        }
    )
    assert (node.site, node.architecture) == ("lab", "arm64")


def test_power_model_is_linear_in_utilisation_and_peak_not_below_idle() -> None:
    power = PowerModel(idle_w=10, peak_w=30)
    assert [power.watts(u) for u in (0.0, 0.5, 1.0, 2.0)] == [10, 20, 30, 30]
    with pytest.raises(ValidationError, match="below idle_w"):
        PowerModel(idle_w=30, peak_w=10)


def test_accelerator_names_are_unique_on_a_node() -> None:
    devices = [{"name": "gpu0", "type": "gpu"}, {"name": "gpu0", "type": "gpu"}]
    with pytest.raises(ValidationError, match="accelerator names repeat"):
        Node.model_validate({"name": "x", "cores": 1, "memory_mib": 1, "accelerators": devices})


def test_service_cpu_defaults_to_its_per_core_demands() -> None:
    svc = ServiceRequirement.model_validate({"name": "s", "cores": [1000, 50, 0]})
    assert (svc.cpu_millicores, svc.cores) == (1050, [1000, 50])


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("none", []),
        ("cpu", ["cpu"]),
        ("both", ["cpu", "memory"]),
        (["memory", "cpu"], ["cpu", "memory"]),
    ],
)
def test_sensitivity_forms(given: object, kept: list[str]) -> None:
    svc = ServiceRequirement.model_validate({"name": "s", "sensitivity": given})
    assert svc.sensitivity == kept


def test_errors_name_the_field() -> None:
    with pytest.raises(ValidationError) as caught:
        ServiceRequirement.model_validate({"name": "s", "replicas": -1, "ports": [70000]})
    fields = {".".join(map(str, e["loc"])) for e in caught.value.errors()}
    assert fields == {"replicas", "ports"}
    with pytest.raises(ValidationError, match="sensitivity"):
        ServiceRequirement.model_validate({"name": "s", "sensitivity": ["disk"]})


def test_a_service_spreads_when_it_names_itself() -> None:
    assert ServiceRequirement(name="s", anti_affinity=["s"]).spreads
    assert not ServiceRequirement(name="s", anti_affinity=["t"]).spreads


def test_a_plan_groups_by_node_in_order() -> None:
    plan = Plan.model_validate(
        {
            "placer": "first-fit",
            "status": "heuristic",
            "objective": {"name": "nodes", "value": 2, "unit": "nodes"},
            "placements": [
                {"service": "a", "replica": 0, "node": "n2"},
                {"service": "a", "replica": 1, "node": "n1"},
                {"service": "b", "replica": 0, "node": "n2"},
            ],
        }
    )
    assert plan.nodes_used == ["n2", "n1"]
    assert [p.service for p in plan.by_node()["n2"]] == ["a", "b"]
