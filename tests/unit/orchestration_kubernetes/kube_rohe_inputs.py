"""ROHE-like inputs for the rendering tests, built with our models: the nodes and services of
ROHE's ``templates/orchestration_command/add_node.yaml`` and ``add_service.yaml``
(rdsea/ROHE), converted by hand (per-core percentages to millicores, ``memory.rss`` to MiB,
``accelerator.gpu`` to a share of a ``gpu``), and a plan placing them as a placer would.

Plain functions, not a conftest: a second conftest.py under tests/ without ``__init__.py``
clashes with tests/integration's when ``--doctest-modules`` collects both."""

from __future__ import annotations

from harmonia.orchestration import (
    Node,
    ObjectiveValue,
    Placement,
    Plan,
    ServiceRequirement,
    Unplaced,
)

GPU = [{"name": "GPU0", "type": "gpu", "capacity": 100}]


def rohe_nodes() -> list[Node]:
    pis = [
        Node.model_validate({"name": f"RaspberryPi_0{i}", "cores": 4, "memory_mib": 4096})
        for i in range(1, 6)
    ]
    nanos = [
        Node.model_validate(
            {"name": f"Jetson_nano_0{i}", "cores": 4, "memory_mib": 4096, "accelerators": GPU}
        )
        for i in range(1, 5)
    ]
    xavier = Node.model_validate(
        {"name": "Jetson_xavier_06", "cores": 8, "memory_mib": 16384, "accelerators": GPU}
    )
    return [*pis, *nanos, xavier]


def _service(
    name: str, cpu: int, per_core: list[int], rss: int, replicas: int, image: str, gpu: int = 0
) -> ServiceRequirement:
    return ServiceRequirement.model_validate(
        {
            "name": name,
            "cpu_millicores": cpu,
            "cores": [p * 10 for p in per_core],  # ROHE: per cent of a core
            "memory_mib": rss,
            "replicas": replicas,
            "image": image,
            "ports": [4002, 4003],
            "accelerator": {"type": "gpu", "share": gpu} if gpu else None,
        }
    )


def rohe_services() -> list[ServiceRequirement]:
    return [
        _service("object_detection_web_service", 424, [50, 5], 200, 2, "rdsea/od_web:2.0"),
        _service("object_detection_imgproc_service", 933, [90, 5], 300, 2, "rdsea/od_proc:2.0"),
        _service(
            "object_detection_inference_service", 500, [50], 600, 1, "rdsea/od_inf:2.0", gpu=15
        ),
        _service("kpi_web_service", 400, [40, 5], 200, 1, "rdsea/kpi_web:2.0"),
        _service("kpi_minio_service", 1000, [100], 300, 2, "minio/minio"),
        _service("kpi_database_service", 500, [20, 20, 10, 10], 500, 1, "rdsea/kpi_database:2.0"),
        _service("bts_inference_service", 1000, [100, 5, 5, 5], 2500, 3, "rdsea/bts_ml_proc:2.0"),
    ]


#: where each replica goes: (service, node) in placement order
PLACED = [
    ("object_detection_web_service", "RaspberryPi_01"),
    ("object_detection_web_service", "RaspberryPi_02"),
    ("object_detection_imgproc_service", "RaspberryPi_01"),
    ("object_detection_imgproc_service", "RaspberryPi_01"),
    ("object_detection_inference_service", "Jetson_nano_01"),
    ("kpi_web_service", "RaspberryPi_03"),
    ("kpi_minio_service", "RaspberryPi_03"),
    ("kpi_minio_service", "RaspberryPi_04"),
    ("kpi_database_service", "Jetson_xavier_06"),
    ("bts_inference_service", "Jetson_xavier_06"),
    ("bts_inference_service", "Jetson_xavier_06"),
]


def rohe_plan() -> Plan:
    """The services above placed on the nodes, one replica of bts_inference_service left out."""
    replicas: dict[str, int] = {}
    placements = []
    for service, node in PLACED:
        replica = replicas.get(service, 0)
        replicas[service] = replica + 1
        placements.append(Placement(service=service, replica=replica, node=node))
    return Plan(
        placer="best-fit",
        status="heuristic",
        objective=ObjectiveValue(name="nodes", value=6, unit="nodes"),
        placements=placements,
        unplaced=[
            Unplaced(
                service="bts_inference_service",
                replica=2,
                reason="every node lacks 2500 MiB of memory",
                kind="memory",
            )
        ],
    )
