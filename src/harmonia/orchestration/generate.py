"""Seeded clusters and workloads for tests, the conformance suite and the benchmark.

Node types follow ROHE's testbed (Raspberry Pis, Jetson Nanos and Xaviers) plus cloud
servers; service templates are ROHE's example services (its ``add_service`` template), with
memory varied and some made contention-sensitive or spread. Power figures are illustrative
orders of magnitude, not measurements.

>>> nodes, services = generate_cluster(10, 50, seed=1)
>>> len(nodes), sum(s.replicas for s in services)
(10, 50)
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from harmonia.orchestration._nodes import Node
from harmonia.orchestration._services import ServiceRequirement


@dataclass(frozen=True)
class NodeType:
    name: str
    cores: int
    memory_mib: int
    gpus: int
    idle_w: float
    peak_w: float
    architecture: str
    site: str
    weight: float


NODE_TYPES = (
    NodeType("pi", 4, 4096, 0, 2.7, 6.4, "arm64", "edge", 0.40),
    NodeType("nano", 4, 4096, 1, 5.0, 10.0, "arm64", "edge", 0.20),
    NodeType("xavier", 8, 16384, 1, 10.0, 30.0, "arm64", "edge", 0.15),
    NodeType("server", 32, 65536, 0, 90.0, 300.0, "amd64", "cloud", 0.20),
    NodeType("gpu-server", 32, 131072, 2, 120.0, 450.0, "amd64", "cloud", 0.05),
)

#: ROHE's example services: per-core demands (millicores), total CPU, memory, GPU share
TEMPLATES: tuple[dict[str, Any], ...] = (
    {"name": "dataproc", "cores": [1000, 50, 50, 50], "cpu": 1000, "mem": 300},
    {"name": "bts-inference", "cores": [1000, 50, 50, 50], "cpu": 1000, "mem": 2500},
    {"name": "kpi-database", "cores": [200, 200, 100, 100], "cpu": 500, "mem": 500},
    {"name": "kpi-inference", "cores": [1000, 800, 800, 800], "cpu": 4000, "mem": 400},
    {"name": "minio", "cores": [1000], "cpu": 1000, "mem": 300},
    {"name": "kpi-web", "cores": [400, 50], "cpu": 400, "mem": 200},
    {"name": "od-imgproc", "cores": [900, 50], "cpu": 933, "mem": 300},
    {"name": "od-inference", "cores": [500], "cpu": 500, "mem": 600, "gpu": 15},
    {"name": "od-web", "cores": [500, 50], "cpu": 424, "mem": 200},
)


def _type_counts(count: int) -> list[int]:
    """Nodes per type: proportional to the weights, every type present from 5 nodes on."""
    counts = [int(t.weight * count) for t in NODE_TYPES]
    if count >= len(NODE_TYPES):
        counts = [max(c, 1) for c in counts]
    while sum(counts) > count:
        counts[counts.index(max(counts))] -= 1
    i = 0
    while sum(counts) < count:
        counts[i % len(counts)] += 1
        i += 1
    return counts


def generate_nodes(count: int) -> list[Node]:
    """``count`` nodes of the built-in types; nodes of one type are identical but for name."""
    nodes = []
    for kind, number in zip(NODE_TYPES, _type_counts(count), strict=True):
        for i in range(number):
            nodes.append(
                Node(
                    name=f"{kind.name}-{i:04d}",
                    cores=kind.cores,
                    memory_mib=kind.memory_mib,
                    accelerators=[
                        {"name": f"gpu{g}", "type": "gpu", "capacity": 100}
                        for g in range(kind.gpus)
                    ],
                    labels={"site": kind.site, "architecture": kind.architecture},
                    power={"idle_w": kind.idle_w, "peak_w": kind.peak_w},
                    carbon_g_per_kwh=250.0,
                )
            )
    return nodes


def generate_services(
    replicas: int, seed: int, services: int | None = None
) -> list[ServiceRequirement]:
    """Services from ROHE's templates with ``replicas`` replicas in all (one service per
    hundred replicas, 5 to 50), memory varied, a tenth each contention-sensitive or spread."""
    rng = random.Random(seed)
    count = services if services is not None else min(50, max(5, replicas // 100))
    count = max(1, min(count, max(replicas, 1)))
    split = sorted(rng.sample(range(1, replicas), count - 1)) if count > 1 else []
    sizes = [b - a for a, b in zip([0, *split], [*split, replicas], strict=True)]
    out = []
    for i, size in enumerate(sizes):
        template = rng.choice(TEMPLATES)
        name = f"{template['name']}-{i:02d}"
        spreads = rng.random() < 0.1 and size <= 20
        out.append(
            ServiceRequirement(
                name=name,
                cpu_millicores=template["cpu"],
                cores=template["cores"],
                memory_mib=max(50, round(template["mem"] * rng.uniform(0.5, 2.0) / 50) * 50),
                accelerator={"type": "gpu", "share": template["gpu"]}
                if "gpu" in template
                else None,
                replicas=size,
                sensitivity=["cpu"] if rng.random() < 0.1 and size <= 20 else [],
                anti_affinity=[name] if spreads else [],
            )
        )
    return out


def generate_cluster(
    nodes: int, replicas: int, seed: int = 0
) -> tuple[list[Node], list[ServiceRequirement]]:
    """A cluster of ``nodes`` nodes and a workload of ``replicas`` replicas."""
    return generate_nodes(nodes), generate_services(replicas, seed)
