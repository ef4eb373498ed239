"""The judge of plans catches every kind of broken plan (so that the other tests can trust
it when it finds nothing)."""

from __future__ import annotations

from typing import Any

import pytest
from placement_cases import node, service

from harmonia.orchestration import Plan, plan_violations

NODES = [
    node("a", cores=2, memory=1024, labels={"site": "lab"}),
    node("g", cores=2, memory=1024, accelerators=[{"name": "gpu0", "type": "gpu"}]),
]
SERVICES = [
    service("web", cpu=500, cores=[500], memory_mib=256, replicas=2),
    service("infer", cpu=100, accelerator={"type": "gpu", "share": 60}),
    service("lone", cpu=100, anti_affinity=["lone", "web"]),
    service("db", cpu=100, sensitivity="cpu"),
    service("cache", cpu=100, sensitivity="cpu", node_selector={"site": "lab"}),
]


def _plan(*placements: tuple[str, int, str], **fields: Any) -> Plan:
    return Plan.model_validate(
        {
            "placer": "test",
            "status": "heuristic",
            "objective": {"name": "nodes", "value": 0, "unit": "nodes"},
            "placements": [{"service": s, "replica": r, "node": n} for s, r, n in placements],
            **fields,
        }
    )


SOUND = [
    ("web", 0, "a"),
    ("web", 1, "a"),
    ("infer", 0, "g"),
    ("lone", 0, "g"),
    ("db", 0, "g"),
    ("cache", 0, "a"),
]


def test_a_sound_plan_passes() -> None:
    assert plan_violations(NODES, SERVICES, _plan(*SOUND)) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda p: p[:-1], "cache replica 0 appears 0 times"),
        (lambda p: [*p, ("cache", 0, "a")], "cache replica 0 appears 2 times"),
        (lambda p: [*p, ("ghost", 0, "a")], "unknown replica ghost"),
        (lambda p: [*p[:-1], ("cache", 0, "nowhere")], "unknown node nowhere"),
        (lambda p: [("web", 0, "g"), ("web", 1, "g"), *p[2:]], "shares the node with web"),
        (lambda p: [*p[:2], ("infer", 0, "a"), *p[3:]], "a: has no gpu"),
        (lambda p: [*p[:4], ("db", 0, "a"), *p[5:]], "cpu-sensitive replicas"),
        (lambda p: [*p[:5], ("cache", 0, "g")], "cache needs label site=lab"),
    ],
)
def test_each_broken_rule_is_named(change, expected: str) -> None:  # type: ignore[no-untyped-def]
    problems = plan_violations(NODES, SERVICES, _plan(*change(SOUND)))
    assert any(expected in p for p in problems), problems


def test_capacities_cpu_memory_cores_and_devices() -> None:
    nodes = [node("n", cores=2, memory=1024, accelerators=[{"name": "gpu0", "type": "gpu"}])]
    services = [
        service("big", cpu=900, cores=[900], memory_mib=600, replicas=3),
        service("infer", cpu=0, accelerator={"type": "gpu", "share": 60}, replicas=2),
    ]
    placed = [("big", r, "n") for r in range(3)] + [("infer", r, "n") for r in range(2)]
    problems = " | ".join(plan_violations(nodes, services, _plan(*placed)))
    for expected in ("CPU 2700 m exceeds 2000 m", "memory 1800 MiB exceeds", "per-core", "gpu"):
        assert expected in problems, problems


def test_the_cores_and_device_a_plan_names_are_checked_exactly() -> None:
    nodes = [node("n", cores=2, accelerators=[{"name": "gpu0", "type": "gpu"}])]
    services = [
        service("half", cores=[600, 100], replicas=2),
        service("infer", cpu=0, accelerator={"type": "gpu", "share": 60}),
    ]
    same_core = _plan(
        *[],
        placements=[
            {"service": "half", "replica": 0, "node": "n", "cores": [0, 1]},
            {"service": "half", "replica": 1, "node": "n", "cores": [0, 1]},
            {"service": "infer", "replica": 0, "node": "n", "accelerator": "gpu9"},
        ],
    )
    problems = " | ".join(plan_violations(nodes, services, same_core))
    assert "core 0: 1200 m exceeds 1000 m" in problems
    assert "on no gpu 'gpu9'" in problems
