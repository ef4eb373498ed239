"""The pipeline reference system: its structure and presets, its stages in-process through
the sdk (trace ids across stages, each service's actions applied to it alone), its replay
with one engine per classify service, and its live run as processes against a fake server."""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from harmonia.core.pipeline import summarize_pipeline
from harmonia.core.policy import Policy, parse_policy
from harmonia.energy import EstimateMeter
from harmonia.policies import load_policy, presets
from harmonia.registry import ModelRegistry
from harmonia.replay.pipeline import replay_pipeline
from harmonia.replay.systems import spec_for
from harmonia.sdk import InMemoryTransport, Probe
from harmonia.systems import reference_system
from harmonia.systems.pipeline import (
    SERVICES,
    STRUCTURE,
    application,
)
from harmonia.systems.pipeline.stages import Aggregator, Camera, Classifier, camera_stage
from harmonia.systems.vision.scenario import Scenario, parse_scenario
from harmonia.systems.vision.system import VisionSystem

ROOT = Path(__file__).resolve().parents[2]


def short(samples: int, drift_from: int, condition: str = "dark") -> Scenario:
    """Clean frames, then ``condition`` to the end (dark hurts the CNNs, not the small
    perceptron; fog hurts every model)."""
    strength = {"dark": 0.8, "fog": 0.7}[condition]
    return parse_scenario(
        {
            "samples": samples,
            "drifts": [
                {"condition": condition, "start": drift_from, "end": samples, "strength": strength}
            ],
        }
    )


def switch_policy(service: str, start: str) -> Policy:
    """Switch on a low window: cheap (no training), so the test is fast."""
    return parse_policy(
        {
            "policy": f"test-{service}",
            "system": "pipeline",
            "models": list(SERVICES[service]),
            "initial_model": start,
            "objective": {"quality": "accuracy", "energy_range_j": [0, 0.01]},
            "window": 25,
            "strategy": "switch",
            "boundaries": [{"when": "quality < 0.8", "then": "switch_model"}],
        }
    )


# -- structure and presets ---------------------------------------------------------------------
def test_the_example_app_declares_the_systems_structure() -> None:
    declared = yaml.safe_load((ROOT / "examples" / "apps" / "pipeline.yaml").read_text())
    assert declared == STRUCTURE
    app = application()
    assert [stage.name for stage in app.stages] == ["camera", "classify", "aggregate"]
    for service, models in SERVICES.items():
        assert app.service(service).models == list(models)
        assert app.stage_of(service) == "classify"


def test_each_classify_service_has_a_valid_preset_over_its_models() -> None:
    system = reference_system("pipeline")
    assert dict(system.services) == SERVICES
    assert system.live_presets == {s: f"pipeline-{s}" for s in SERVICES}
    assert set(system.live_presets.values()) <= set(system.presets())
    for service, preset in system.live_presets.items():
        assert preset in presets()
        policy = load_policy(ROOT / "src" / "harmonia" / "presets" / f"{preset}.yaml")
        assert policy.system == "pipeline"
        assert policy.models == list(SERVICES[service])


def test_the_replay_lab_knows_the_pipelines_approaches() -> None:
    spec = spec_for("pipeline")
    assert spec.settings.models == ["small", "medium", "large"]
    assert "presets" in spec.settings.approaches and "oracle" not in spec.settings.approaches
    assert spec.load(None, 120).samples == 120
    with pytest.raises(ValueError, match="run_approach"):
        spec.serve(None)  # type: ignore[arg-type]  # a frame goes through every stage


# -- the stages in-process, through the sdk ----------------------------------------------------
class FakeServer:
    """One telemetry endpoint per stage's probe: it stores samples and, once, answers with
    an action aimed at that service."""

    def __init__(self, actions: dict[str, dict[str, Any]]) -> None:
        self.samples: list[dict[str, Any]] = []
        self.actions = dict(actions)
        self.reports: dict[int, dict[str, Any]] = {}
        self.lock = threading.Lock()

    def transport(self, service: str) -> InMemoryTransport:
        def send(app: str, instance: str, samples: list[dict[str, Any]]) -> dict[str, Any]:
            with self.lock:
                self.samples.extend(samples)
                action = self.actions.pop(service, None)
            return {"accepted": len(samples), "actions": [action] if action else []}

        def report(app: str, action_id: int, body: dict[str, Any]) -> None:
            self.reports[action_id] = body

        return InMemoryTransport(send, report)


def test_stages_share_each_frames_trace_and_each_service_applies_its_own_actions(
    vision_registry: ModelRegistry, tmp_path: Path
) -> None:
    server = FakeServer(
        {
            "fast": {"id": 1, "kind": "switch_model", "model": "medium", "reason": "test"},
            "accurate": {"id": 2, "kind": "switch_model", "model": "medium", "reason": "test"},
        }
    )

    def probe(service: str, stage: str) -> Probe:
        return Probe(
            "pipeline",
            server.transport(service),
            service=service,
            stage=stage,
            instance=f"{service}-test",
            flush_interval=60,
        )

    camera = Camera(short(12, 6))
    camera_probe = probe("conditions", "camera")
    classifiers = {}
    for service, models in SERVICES.items():
        system = VisionSystem(
            vision_registry.fork(tmp_path / service), EstimateMeter(), models=models
        )
        system.switch(models[0] if service == "fast" else models[-1])
        classifiers[service] = Classifier(service, system, probe(service, "classify"))
    aggregator = Aggregator(probe("vote", "aggregate"))
    probes = [camera_probe, *(c.probe for c in classifiers.values()), aggregator.probe]

    def serve(indices: range) -> None:
        for index in indices:
            frame = camera_stage(camera, camera_probe, index)
            answers = [classify(frame) for classify in classifiers.values()]
            verdicts = [aggregator(answer) for answer in answers]
            assert verdicts[0] is None and verdicts[1] is not None
            assert verdicts[1].trace_id == frame.trace_id

    serve(range(6))
    assert classifiers["fast"].system.active == "small"
    for p in probes:
        p.flush()  # the replies carry the actions: each service's probe applies its own
    assert classifiers["fast"].system.active == "medium"
    assert classifiers["accurate"].system.active == "medium"
    assert server.reports == {
        1: {"status": "applied", "reason": "serving medium"},
        2: {"status": "applied", "reason": "serving medium"},
    }
    assert classifiers["fast"].run.applied == ["switch_model medium"]
    assert classifiers["accurate"].run.applied == ["switch_model medium"]
    serve(range(6, 12))
    for p in probes:
        p.close()

    by_trace: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for sample in server.samples:
        by_trace[sample["trace_id"]].add((sample["stage"], sample["service"]))
    assert len(by_trace) == 12
    assert all(
        seen == {("camera", "conditions"), ("classify", "fast"), ("classify", "accurate"),
                 ("aggregate", "vote")}
        for seen in by_trace.values()
    )  # fmt: skip
    fast = [s["model"] for s in server.samples if s["service"] == "fast"]
    assert fast == ["small"] * 6 + ["medium"] * 6
    assert aggregator.verdicts == 12 and not aggregator.pending
    summary = summarize_pipeline(application(), server.samples)
    assert summary.end_to_end["traces"] == summary.end_to_end["complete"] == 12
    assert summary.stages["aggregate"]["accuracy"] == aggregator.accuracy


def test_a_frame_is_the_same_every_time_it_is_taken() -> None:
    camera = Camera(short(20, 10))
    first, again = camera.frame(15), camera.frame(15)
    assert np.array_equal(first.image, again.image) and first.condition == "dark"
    assert camera.frame(3).condition == "clean"
    assert first.image.mean() < camera.images[15].mean()  # darkened
    assert first.trace_id != again.trace_id  # a new trace each time


# -- replay ------------------------------------------------------------------------------------
def test_replay_adapts_each_service_independently(vision_registry: ModelRegistry) -> None:
    result = replay_pipeline(
        short(150, 50, "fog"),
        switch_policy("fast", "small"),
        switch_policy("accurate", "medium"),
        registry=vision_registry,
    )
    fast, accurate = result.services["fast"], result.services["accurate"]
    assert fast.switches >= 1 and accurate.switches >= 1
    assert {a.model for a in fast.actions} <= set(SERVICES["fast"])
    assert {a.model for a in accurate.actions} <= set(SERVICES["accurate"])
    assert fast.models[0] == "small" and "medium" in fast.models
    assert accurate.models[0] == "medium" and "large" in accurate.models
    assert fast.models != accurate.models
    assert all(action.index >= 50 for action in [*fast.actions, *accurate.actions])

    assert result.frames == len(result.correct) == len(result.energy_per_frame) == 150
    assert result.accuracy == pytest.approx(result.correct.mean())
    assert set(result.chosen) <= set(SERVICES)
    assert set(result.energy_per_stage) == {"camera", "classify", "aggregate"}
    assert result.end_to_end_energy_j == pytest.approx(result.energy_per_frame.mean())  # no retrain
    assert result.energy_per_stage["classify"] > result.energy_per_stage["aggregate"]
    summary = result.summary
    assert summary.end_to_end["complete"] == 150
    assert summary.services["fast"]["accuracy"] == pytest.approx(fast.accuracy)
    assert summary.stages["aggregate"]["accuracy"] == pytest.approx(result.accuracy)
    assert summary.end_to_end["energy_j"] == pytest.approx(result.energy_per_frame.mean())


def test_replay_under_the_shipped_presets_retrains_each_service_in_its_own_registry(
    vision_registry: ModelRegistry, tmp_path: Path
) -> None:
    result = replay_pipeline(
        short(400, 100), registry=vision_registry, keep_registries=tmp_path / "kept"
    )
    for service, done in result.services.items():
        assert done.policy == f"pipeline-{service}"
        assert done.retrains >= 1, (service, done.actions)
        registry = ModelRegistry(tmp_path / "kept" / f"pipeline-{service}")
        retrains = [a.model for a in done.actions if a.kind == "retrain"]
        for model in ("small", "medium", "large"):
            # each retrain of a model adds one version, to this service's registry only
            expected = 1 + retrains.count(model)
            assert len(registry.versions(model)) >= 1
            assert max(v.version for v in registry.versions(model)) <= expected
    assert result.energy_per_stage["classify"] > float(np.mean(result.energy_per_frame)) * 0.5
    # retrains cost, and every frame carries its share of them (the score counts them)
    training = sum(done.training_joules for done in result.services.values())
    assert training > 0
    assert result.end_to_end_energy_j == pytest.approx(result.energy_per_frame.mean())
    inference_only = result.energy_per_frame - training / result.frames
    assert result.end_to_end_energy_j > inference_only.mean()
    assert result.accuracy >= min(d.accuracy for d in result.services.values())


def test_replay_refuses_a_policy_over_another_services_models(
    vision_registry: ModelRegistry,
) -> None:
    with pytest.raises(ValueError, match="does not serve: large"):
        replay_pipeline(
            short(10, 5),
            switch_policy("accurate", "large"),
            registry=vision_registry,
        )


# -- live, as processes, against a fake HTTP server ---------------------------------------------
class _Recorder(BaseHTTPRequestHandler):
    samples: list[dict[str, Any]]
    instances: list[tuple[str, dict[str, Any]]]
    lock: threading.Lock

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
        with self.lock:
            if self.path.endswith("/telemetry"):
                self.samples.extend(body["samples"])
                reply: dict[str, Any] = {"accepted": len(body["samples"]), "actions": []}
            elif self.path.endswith("/instances"):
                self.instances.append((self.path, body))
                reply = {"name": body["name"]}
            else:
                reply = {}
        data = json.dumps(reply).encode()
        self.send_response(201 if self.path.endswith("/instances") else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_PUT(self) -> None:
        self.do_POST()


@pytest.fixture
def fake_server() -> Iterator[tuple[str, type[_Recorder]]]:
    handler = type(
        "Handler", (_Recorder,), {"samples": [], "instances": [], "lock": threading.Lock()}
    )
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", handler
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.slow
def test_live_each_stage_reports_to_a_real_server_and_each_service_adapts(
    vision_data_dir: Path, tmp_path: Path
) -> None:
    """The four stage processes against `harmonia serve`'s app: every frame traced through
    the three stages, every instance registered on its node, and each classify service
    switching under its own policy, the switch reaching that service only."""
    import httpx

    from harmonia.server.background import BackgroundServer
    from harmonia.store import Store, sqlite_url
    from harmonia.systems.pipeline.live import run_live

    admin = "admin-token"
    store = Store(sqlite_url(tmp_path / "server"))
    with BackgroundServer(store, admin, data_dir=tmp_path / "server") as url:
        headers = {"Authorization": f"Bearer {admin}"}
        token = httpx.post(f"{url}/api/v1/apps", json=STRUCTURE, headers=headers).json()["token"]
        for service, start in (("fast", "small"), ("accurate", "large")):
            document = switch_policy(service, start).model_dump(mode="json", exclude_none=True)
            reply = httpx.put(
                f"{url}/api/v1/apps/pipeline/services/{service}/policy",
                content=yaml.safe_dump(document),
                headers={"Authorization": f"Bearer {token}"},
            )
            assert reply.status_code == 201, reply.text
        done = run_live(url, "pipeline", token, short(120, 30, "fog"), data_dir=vision_data_dir)
        assert done.served == 120

        shown = httpx.get(f"{url}/api/v1/apps/pipeline").json()
        instances = [
            i for stage in shown["stages"] for s in stage["services"] for i in s["instances"]
        ]
        assert {i["service"] for i in instances} == {"conditions", "fast", "accurate", "vote"}
        assert all(i["node"] for i in instances)

        view = httpx.get(f"{url}/api/v1/apps/pipeline/pipeline", params={"span": 3600}).json()
        assert view["end_to_end"]["traces"] == 120 and view["end_to_end"]["complete"] == 120
        assert set(view["stages"]) == {"camera", "classify", "aggregate"}

        actions = httpx.get(f"{url}/api/v1/apps/pipeline/actions").json()
        switched = {(a["service"], a["model"]) for a in actions if a["kind"] == "switch_model"}
        assert {service for service, _ in switched} == {"fast", "accurate"}
        assert all(model in SERVICES[service] for service, model in switched)
        assert any(line.startswith("fast: ") for line in done.applied)
        assert any(line.startswith("accurate: ") for line in done.applied)
    store.close()


@pytest.mark.slow
def test_a_failing_stage_stops_every_process_and_says_which(
    vision_data_dir: Path, fake_server: tuple[str, type[_Recorder]]
) -> None:
    import multiprocessing

    from harmonia.systems.pipeline.live import run_live
    from harmonia.systems.vision.scenario import Drift

    url, _ = fake_server
    broken = Scenario(20, (Drift("rain", 5, 10, 0.5),))  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="stage camera failed"):
        run_live(url, "pipeline", "token", broken, data_dir=vision_data_dir, join_timeout=20)
    assert multiprocessing.active_children() == []
