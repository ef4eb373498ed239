"""The contracts issue's done-when, in the pipeline reference system: its stages, each
instance reporting through its own sdk probe over HTTP to a real server, with one instance
of the ``fast`` classify service made slow (`Classifier`'s ``delay_s``). The end-to-end
latency SLO is violated; the server checks it as the window closes (no one asks), explains
it down to the slow instance and its node, and decides the SLO's remedy (``degrade``), which
the ``fast`` service pulls with its next telemetry reply and applies."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from harmonia.energy import EstimateMeter
from harmonia.registry import ModelRegistry
from harmonia.sdk import HTTPTransport, Probe
from harmonia.server.background import BackgroundServer
from harmonia.store import Store, sqlite_url
from harmonia.systems.pipeline import (
    AGGREGATE,
    CAMERA,
    CAMERA_SERVICE,
    CLASSIFY,
    SERVICES,
    STRUCTURE,
    VOTE_SERVICE,
)
from harmonia.systems.pipeline.live import instance_name, register_instance
from harmonia.systems.pipeline.stages import Aggregator, Camera, Classifier, camera_stage
from harmonia.systems.vision.scenario import parse_scenario
from harmonia.systems.vision.system import VisionSystem

ADMIN = "admin-token"
#: what each frame of the slow instance takes more (seconds)
SLOW_S = 0.3
CONTRACT = """
name: pipeline-sla
slos:
  - name: frame-latency
    scope: end_to_end
    condition: p99(latency_ms) <= 150
    window: 20 samples
    severity: critical
    then: degrade
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """A real server (HTTP on loopback) that checks contracts only as their windows close:
    no periodic check, so any check it runs here was driven by the telemetry."""
    store = Store(sqlite_url(tmp_path / "server"))
    with BackgroundServer(store, ADMIN, data_dir=tmp_path / "server", contract_check_s=0) as url:
        yield url
    store.close()


def wait_for(what: Callable[[], Any], timeout: float = 20.0) -> Any:
    """``what()`` once it is truthy (it polls the server); fails after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not (found := what()):
        assert time.monotonic() < deadline, "the server did not get there in time"
        time.sleep(0.1)
    return found


def test_a_slow_instance_violates_the_pipelines_latency_slo_named_and_remedied(
    server: str, vision_registry: ModelRegistry, tmp_path: Path
) -> None:
    admin = {"Authorization": f"Bearer {ADMIN}"}
    token = httpx.post(f"{server}/api/v1/apps", json=STRUCTURE, headers=admin).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    put = httpx.put(f"{server}/api/v1/apps/pipeline/contract", content=CONTRACT, headers=headers)
    assert put.status_code == 201, put.text

    transports: list[HTTPTransport] = []

    def probe(service: str, stage: str, node: str) -> Probe:
        """An instance's probe, as the live run makes it: registered on its node."""
        instance = instance_name(service, node)
        assert register_instance(server, "pipeline", token, service, instance, node)
        transport = HTTPTransport(server, token)
        transports.append(transport)
        return Probe(
            "pipeline",
            transport,
            instance=instance,
            service=service,
            stage=stage,
            meter=EstimateMeter(),
            flush_interval=60,  # each stage reports when the test says, in pipeline order
        )

    def classifier(service: str, node: str, delay_s: float = 0.0) -> Classifier:
        """An instance of a classify service on ``node``, serving its dearest model."""
        models = SERVICES[service]
        system = VisionSystem(vision_registry.fork(tmp_path / node), EstimateMeter(), models=models)
        system.switch(models[-1])
        return Classifier(service, system, probe(service, CLASSIFY, node), delay_s=delay_s)

    camera = Camera(parse_scenario({"samples": 30, "drifts": []}))
    camera_probe = probe(CAMERA_SERVICE, CAMERA, "edge-0")
    fast = [classifier("fast", "edge-1"), classifier("fast", "edge-2", delay_s=SLOW_S)]
    accurate = classifier("accurate", "edge-3")
    aggregator = Aggregator(probe(VOTE_SERVICE, AGGREGATE, "edge-0"))
    # each stage reports after the one before it, as frames flow
    probes = [camera_probe, *(f.probe for f in fast), accurate.probe, aggregator.probe]

    def serve(frames: range, to: list[Classifier]) -> None:
        """Frames through the pipeline, the fast service's balanced over ``to``."""
        for index in frames:
            frame = camera_stage(camera, camera_probe, index)
            for answer in (to[index % len(to)](frame), accurate(frame)):
                aggregator(answer)
        for each in probes:
            assert each.flush(10)

    try:
        serve(range(20), fast)  # half the frames through the slow instance

        [violation] = wait_for(
            lambda: httpx.get(f"{server}/api/v1/apps/pipeline/violations").json()
        )
        slow, node = fast[1].probe.instance, "edge-2"
        assert (violation["slo"], violation["severity"]) == ("frame-latency", "critical")
        blamed = violation["attribution"][0]
        assert (blamed["stage"], blamed["service"], blamed["instance"], blamed["node"]) == (
            CLASSIFY,
            "fast",
            slow,
            node,
        )
        assert slow in violation["explanation"] and node in violation["explanation"]

        actions = httpx.get(f"{server}/api/v1/apps/pipeline/actions").json()
        [degrade] = [a for a in actions if a["id"] == violation["action_id"]]
        assert (degrade["kind"], degrade["service"], degrade["model"]) == (
            "degrade",
            "fast",
            "small",
        )
        assert degrade["context"]["away_from"] == slow and degrade["context"]["node"] == node
        assert degrade["status"] == "pending"

        # the fast service pulls it with its next reply: the instance that reports first
        # serves the cheaper model from then on, and tells the server so
        serve(range(20, 22), fast[:1])
        done = wait_for(
            lambda: [
                a
                for a in httpx.get(f"{server}/api/v1/apps/pipeline/actions").json()
                if a["id"] == degrade["id"] and a["status"] == "applied"
            ]
        )
        assert done[0]["detail"] == "serving small"
        assert fast[0].run.applied == ["degrade small"] and fast[0].system.active == "small"
        assert fast[1].run.applied == []
    finally:
        for each in probes:
            each.close(10)
        for transport in transports:
            transport.close()
