"""Energy per stage: a node's own counter apportioned by CPU time to the samples that ran on
it (adding up to the counter), stages adding up to the pipeline, and carbon per node."""

from __future__ import annotations

import random
from typing import Any

import pytest

from harmonia.core.application import Application
from harmonia.core.pipeline import (
    JOULES_PER_KWH,
    NODE_BY_CPU_TIME,
    NODE_BY_LATENCY,
    PROBE,
    CarbonIntensity,
    NodeEnergy,
    apportion_node_energy,
    energy_breakdown,
)

APP = Application.model_validate(
    {
        "name": "p",
        "stages": [
            {"name": "detect", "services": [{"name": "yolo", "models": ["m"]}]},
            {
                "name": "classify",
                "after": ["detect"],
                "services": [{"name": "cnn", "models": ["m"]}],
            },
        ],
    }
)


def sample(service: str, node: str | None, ts: float, **fields: Any) -> dict[str, Any]:
    return {"service": service, "instance": f"{service}-1", "node": node, "ts": ts, **fields}


def test_a_node_counter_apportioned_by_cpu_time_adds_up_to_the_counter() -> None:
    rng = random.Random(7)
    readings = [NodeEnergy("edge", t, t + 10.0, rng.uniform(50, 150)) for t in (0.0, 10.0, 20.0)]
    rows = [
        sample("yolo", "edge", rng.uniform(0, 30), metrics={"cpu_s": rng.uniform(0.01, 0.5)})
        for _ in range(200)
    ]
    found = apportion_node_energy(readings, rows)

    assert all(share is not None and share[1] == NODE_BY_CPU_TIME for share in found.shares)
    assert sum(share[0] for share in found.shares if share) == pytest.approx(
        sum(r.joules for r in readings)
    )
    assert found.counter_j == {"edge": pytest.approx(sum(r.joules for r in readings))}
    # within one reading, a sample's share is its part of the CPU time
    first = [i for i, row in enumerate(rows) if row["ts"] < 10.0]
    cpu = sum(rows[i]["metrics"]["cpu_s"] for i in first)
    i = first[0]
    assert found.shares[i][0] == pytest.approx(  # type: ignore[index]
        readings[0].joules * rows[i]["metrics"]["cpu_s"] / cpu
    )


def test_a_reading_half_inside_the_span_counts_half_and_latency_stands_in_for_cpu() -> None:
    readings = [NodeEnergy("edge", 0.0, 10.0, 40.0)]
    rows = [
        sample("yolo", "edge", 6.0, latency_ms=300.0, metrics={"cpu_s": 0.1}),
        sample("cnn", "edge", 7.0, latency_ms=100.0),  # no CPU time: latency for both
        sample("cnn", "edge", 2.0, latency_ms=100.0),  # before the span
    ]
    found = apportion_node_energy(readings, rows, start=5.0, end=20.0)

    assert found.counter_j == {"edge": 20.0}
    assert found.shares[:2] == [(15.0, NODE_BY_LATENCY), (5.0, NODE_BY_LATENCY)]
    assert found.shares[2] is None


def test_overlapping_readings_of_a_node_are_refused() -> None:
    readings = [NodeEnergy("edge", 0.0, 10.0, 1.0), NodeEnergy("edge", 5.0, 15.0, 1.0)]
    with pytest.raises(ValueError, match="overlap"):
        apportion_node_energy(readings, [])


def test_stages_add_up_to_the_pipeline_with_node_counters_and_probes_mixed() -> None:
    # detect runs on a metered node shared with another application; classify on a node
    # without a counter, so its probes' figures stand
    rows = []
    for i in range(10):
        trace = {"trace_id": f"t{i}", "metrics": {"cpu_s": 0.2}}
        rows.append(sample("yolo", "edge", 1.0 + i, energy_j=99.0, **trace))
        rows.append(sample("cnn", "cloud", 1.5 + i, energy_j=0.5, **trace))
    neighbour = [{"node": "edge", "ts": 5.0, "metrics": {"cpu_s": 2.0}}]  # 2 of the 4 CPU s
    found = energy_breakdown(
        APP,
        rows,
        "stage",
        carbon_g_per_kwh=400.0,
        carbon_of_node={"edge": 100.0},
        node_energy=[NodeEnergy("edge", 0.0, 20.0, 80.0)],
        other_samples=neighbour,
    )

    detect, classify = found.groups["detect"], found.groups["classify"]
    assert detect["total_j"] == pytest.approx(40.0)  # half the node's 80 J: half its CPU time
    assert detect["node_j"] == pytest.approx(40.0) and classify["node_j"] == 0.0
    assert classify["total_j"] == pytest.approx(5.0)
    assert found.methods == {"detect": [NODE_BY_CPU_TIME], "classify": [PROBE]}
    assert found.nodes == {"edge": {"counter_j": 80.0, "apportioned_j": pytest.approx(40.0)}}

    assert found.requests == 10
    assert detect["j_per_request"] + classify["j_per_request"] == pytest.approx(
        found.total_j / found.requests
    )
    assert found.total_j == pytest.approx(45.0)
    assert detect["share"] + classify["share"] == pytest.approx(1.0)
    assert detect["g_co2e"] == pytest.approx(40.0 / JOULES_PER_KWH * 100.0)
    assert classify["g_co2e"] == pytest.approx(5.0 / JOULES_PER_KWH * 400.0)
    assert found.total_g_co2e == pytest.approx(detect["g_co2e"] + classify["g_co2e"])


def test_a_node_alone_with_one_application_gives_it_all_its_counter() -> None:
    rows = [
        sample("yolo", "edge", 1.0 + i, trace_id=f"t{i}", metrics={"cpu_s": 0.1 * (i + 1)})
        for i in range(5)
    ] + [sample("cnn", "edge", 1.5 + i, trace_id=f"t{i}", metrics={"cpu_s": 0.3}) for i in range(5)]
    found = energy_breakdown(
        APP, rows, "service", carbon_g_per_kwh=0.0, node_energy=[NodeEnergy("edge", 0, 10, 30.0)]
    )
    assert sum(g["total_j"] for g in found.groups.values()) == pytest.approx(30.0)
    assert found.groups["yolo"]["total_j"] == pytest.approx(30.0 * 1.5 / 3.0)  # 1.5 of 3 CPU s


def test_carbon_comes_from_the_node_then_its_region_then_the_default() -> None:
    carbon = CarbonIntensity(300.0, {"se": 20.0})
    assert carbon.of_node({"region": "se", "carbon_g_per_kwh": "8"}) == (8.0, "node label")
    assert carbon.of_node({"region": "se"}) == (20.0, "region se")
    assert carbon.of_node({"region": "pl"}) == (300.0, "default")
    assert carbon.of_node({"carbon_g_per_kwh": "-3"}) == (300.0, "default")
