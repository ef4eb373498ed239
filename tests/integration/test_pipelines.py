"""Applications as pipelines through the API and the CLI: registration of stages and
services, traced telemetry summarised per service, per stage and end to end, and two services
of one app adapting independently, each action reaching its own service."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from test_push_delivery import Effector
from test_server_api import ADMIN, auth
from typer.testing import CliRunner

from harmonia.cli import app as cli
from harmonia.server.app import create_app
from harmonia.server.background import BackgroundServer
from harmonia.store import Store, sqlite_url

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "apps"
DETECT = {
    "name": "detect",
    "owner": "vision-team",
    "stages": [
        # declared out of order: the server orders stages after the ones they follow
        {
            "name": "aggregate",
            "after": ["classify"],
            "services": [{"name": "vote", "models": ["m"]}],
        },
        {"name": "camera", "services": [{"name": "frames", "models": ["raw"]}]},
        {
            "name": "classify",
            "after": ["camera"],
            "services": [
                {"name": "fast", "models": ["linear", "svm"]},
                {"name": "accurate", "models": ["svm", "lstm"]},
            ],
        },
    ],
}


def policy(service: str, models: list[str], initial: str) -> str:
    return f"""
policy: detect-{service}
system: detect
models: [{", ".join(models)}]
initial_model: {initial}
window: 20 samples
strategy: switch
boundaries:
  - when: quality < 0.8
    then: switch_model
"""


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    store = Store(sqlite_url(tmp_path))
    with TestClient(create_app(store, ADMIN)) as test_client:
        yield test_client
    store.close()


def register(client: TestClient, body: dict[str, Any] = DETECT) -> dict[str, Any]:
    reply = client.post("/api/v1/apps", json=body, headers=auth(ADMIN))
    assert reply.status_code == 201, reply.text
    return dict(reply.json())


def traced(service: str, model: str, n: int, r2: float, *, start: int = 0) -> list[dict[str, Any]]:
    """``n`` samples of ``service``, the i-th of trace ``t{start + i}``."""
    rng = random.Random(hash((service, start)))
    out = []
    for i in range(n):
        target = rng.gauss(100, 20)
        noise = 20 * max(0.0, 1 - r2) ** 0.5
        out.append(
            {
                "service": service,
                "trace_id": f"t{start + i}",
                "model": model,
                "ts": 1000.0 + start + i,
                "latency_ms": 10.0,
                "energy_j": 0.5,
                "prediction": target + rng.gauss(0, noise),
                "target": target,
            }
        )
    return out


def test_a_three_stage_app_is_registered_with_its_ids_and_structure(client: TestClient) -> None:
    registered = register(client)
    assert set(registered["stages"]) == {"camera", "classify", "aggregate"}
    assert set(registered["services"]) == {"frames", "fast", "accurate", "vote"}
    token = registered["token"]

    shown = client.get("/api/v1/apps/detect").json()
    assert [s["name"] for s in shown["stages"]] == ["camera", "classify", "aggregate"]
    classify = shown["stages"][1]
    assert classify["id"] == registered["stages"]["classify"] and classify["after"] == ["camera"]
    assert [(s["name"], s["models"]) for s in classify["services"]] == [
        ("fast", ["linear", "svm"]),
        ("accurate", ["svm", "lstm"]),
    ]
    assert shown["models"] == ["raw", "linear", "svm", "lstm", "m"]  # stage by stage

    # an instance registers with its node; registering again moves it
    body = {"name": "fast-1", "node": "jetson-1", "labels": {"accelerator": "orin"}}
    url = "/api/v1/apps/detect/services/fast/instances"
    assert client.post(url, json=body, headers=auth(token)).status_code == 201
    moved = client.post(url, json={"name": "fast-1", "node": "edge-2"}, headers=auth(token))
    assert moved.json()["node"] == "edge-2"
    [instance] = client.get("/api/v1/apps/detect").json()["stages"][1]["services"][0]["instances"]
    assert (instance["name"], instance["node"]) == ("fast-1", "edge-2")
    assert client.post(url, json=body).status_code == 401
    unknown = client.post(
        "/api/v1/apps/detect/services/nope/instances", json=body, headers=auth(token)
    )
    assert unknown.status_code == 404 and "fast" in unknown.text


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        (lambda b: b["stages"][0].update(after=["nowhere"]), "stages", "is not a stage"),
        (lambda b: b["stages"][1].update(after=["aggregate"]), "stages", "cycle"),
        (
            lambda b: b["stages"][1]["services"].append({"name": "vote", "models": ["x"]}),
            "stages",
            "repeated: vote",
        ),
        (lambda b: b.update(models=["x"]), "", "not both"),
    ],
)
def test_a_pipeline_that_is_not_a_dag_is_refused_naming_why(
    client: TestClient, change: Any, field: str, reason: str
) -> None:
    body = yaml.safe_load(yaml.safe_dump(DETECT))
    change(body)
    reply = client.post("/api/v1/apps", json=body, headers=auth(ADMIN))
    assert reply.status_code == 422
    [issue] = reply.json()["detail"]
    assert issue["field"] == field and reason in issue["reason"]
    assert client.get("/api/v1/apps/detect").status_code == 404  # nothing half-registered


def test_samples_must_name_a_service_of_the_app_and_its_stage(client: TestClient) -> None:
    token = register(client)["token"]
    bad = [
        {"service": "fast", "model": "linear", "ts": 1000.0},
        {"service": "nope", "model": "linear", "ts": 1000.0},
        {"service": "fast", "stage": "camera", "model": "linear", "ts": 1000.0},
    ]
    reply = client.post("/api/v1/apps/detect/telemetry", json={"samples": bad}, headers=auth(token))
    assert reply.status_code == 422
    assert [issue["field"] for issue in reply.json()["detail"]] == [
        "samples[1].service",
        "samples[2].stage",
    ]
    assert client.get("/api/v1/apps/detect/pipeline?start=0&end=2000").json()["samples"] == 0


def test_traced_telemetry_gives_per_stage_and_end_to_end_signals(client: TestClient) -> None:
    token = register(client)["token"]
    batches = {
        "frames": traced("frames", "raw", 10, 1.0),
        "fast": traced("fast", "linear", 10, 0.9),
        "accurate": traced("accurate", "lstm", 10, 0.9),
        "vote": traced("vote", "m", 8, 0.9),  # two requests never reached the last stage
    }
    for service, batch in batches.items():
        for sample in batch:  # later stages end later: 5 ms per stage of the DAG
            depth = {"frames": 0, "fast": 1, "accurate": 1, "vote": 2}[service]
            sample["ts"] += 0.005 * depth
            sample["latency_ms"] = 5.0
        reply = client.post(
            "/api/v1/apps/detect/telemetry",
            json={"instance": f"{service}-1", "samples": batch},
            headers=auth(token),
        )
        assert reply.status_code == 200, reply.text

    view = client.get("/api/v1/apps/detect/pipeline?start=0&end=5000").json()
    assert view["samples"] == 38
    assert view["services"]["fast"]["count"] == 10
    assert view["stages"]["classify"]["count"] == 20  # both services of the stage
    assert view["stages"]["classify"]["total_energy_j"] == pytest.approx(10.0)
    assert view["instances"]["vote"] == {"vote-1": 8}
    end_to_end = view["end_to_end"]
    assert (end_to_end["traces"], end_to_end["complete"]) == (10, 8)
    # first start (frames: ts - 5 ms) to last end (vote: ts + 10 ms): 15 ms per request
    assert end_to_end["p95(latency_ms)"] == pytest.approx(15.0)
    assert end_to_end["energy_j"] == pytest.approx(2.0)  # four stages' samples of 0.5 J

    exported = client.get("/api/v1/apps/detect/telemetry.csv?start=0&end=5000", headers=auth(token))
    header = exported.text.splitlines()[0].split(",")
    assert "stage" in header and "trace_id" in header


def test_two_services_adapt_independently_each_action_reaching_its_own(tmp_path: Path) -> None:
    effector = Effector({"status": "applied", "reason": "switched"})
    store = Store(sqlite_url(tmp_path))
    body = yaml.safe_load(yaml.safe_dump(DETECT))
    body["stages"][2]["services"][1]["effector_url"] = effector.url  # accurate: pushed
    try:
        with TestClient(create_app(store, ADMIN)) as client:
            token = register(client, body)["token"]
            for service, models, initial in (
                ("fast", ["linear", "svm"], "linear"),
                ("accurate", ["svm", "lstm"], "lstm"),
            ):
                reply = client.put(
                    f"/api/v1/apps/detect/services/{service}/policy",
                    content=policy(service, models, initial),
                    headers=auth(token),
                )
                assert reply.status_code == 201, reply.text
                assert reply.json()["service"] == service
            # a policy naming another service's model is refused
            wrong = client.put(
                "/api/v1/apps/detect/services/fast/policy",
                content=policy("fast", ["linear", "lstm"], "linear"),
                headers=auth(token),
            )
            assert wrong.status_code == 422 and "detect/fast cannot serve lstm" in wrong.text

            def send(service: str, model: str, r2: float, start: int) -> list[dict[str, Any]]:
                reply = client.post(
                    "/api/v1/apps/detect/telemetry",
                    json={
                        "instance": f"{service}-1",
                        "samples": traced(service, model, 20, r2, start=start),
                    },
                    headers=auth(token),
                )
                assert reply.status_code == 200, reply.text
                return list(reply.json()["actions"])

            # fast serves badly: its reply carries its switch; accurate's carries nothing
            [switch] = send("fast", "linear", 0.2, 0)
            assert (switch["service"], switch["kind"], switch["model"]) == (
                "fast",
                "switch_model",
                "svm",
            )
            assert send("accurate", "lstm", 0.95, 0) == []
            # accurate degrades: its action is pushed to its own effector, not pulled
            assert send("accurate", "lstm", 0.1, 20) == []
            assert client.app.state.server.pusher.join(10)  # type: ignore[attr-defined]
            [pushed] = effector.received
            assert (pushed["service"], pushed["model"]) == ("accurate", "svm")
            assert send("fast", "svm", 0.95, 20) == []  # fast's reply never carries it

            actions = client.get("/api/v1/apps/detect/actions").json()
            by_service = {a["service"]: a for a in actions if a["kind"] != "none"}
            assert by_service["fast"]["status"] == "delivered"
            assert by_service["accurate"]["status"] == "applied"
            fast_windows = client.get("/api/v1/apps/detect/windows?service=fast").json()
            assert {w["service"] for w in fast_windows} == {"fast"} and len(fast_windows) == 2
            # the one-service routes name the services when the app has several
            reply = client.get("/api/v1/apps/detect/policy")
            assert reply.status_code == 422 and "fast, accurate" in reply.text
    finally:
        store.close()
        effector.close()


def test_the_cli_registers_a_pipeline_and_prints_its_ids(tmp_path: Path) -> None:
    store = Store(sqlite_url(tmp_path))
    with BackgroundServer(store, ADMIN, data_dir=tmp_path) as url:
        runner = CliRunner()
        done = runner.invoke(
            cli,
            ["apps", "register", str(EXAMPLES / "pipeline.yaml"), "--server", url],
            env={"HARMONIA_ADMIN_TOKEN": ADMIN},
        )
        assert done.exit_code == 0, done.output
        lines = done.output.splitlines()
        assert lines[0].startswith("app pipeline: id ")
        assert [line.split(":")[0].strip() for line in lines[1:4]] == [
            "stage camera",
            "stage classify",
            "stage aggregate",
        ]
        assert "service accurate: id" in done.output and "token (shown once):" in done.output

        listed = runner.invoke(cli, ["apps", "--server", url])
        assert listed.exit_code == 0 and "camera → classify → aggregate" in listed.output

        again = runner.invoke(
            cli,
            ["apps", "register", str(EXAMPLES / "pipeline.yaml"), "--server", url],
            env={"HARMONIA_ADMIN_TOKEN": ADMIN},
        )
        assert again.exit_code != 0 and "409" in again.output
    store.close()


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("*.yaml")))
def test_every_example_app_registers(client: TestClient, example: str) -> None:
    body = yaml.safe_load((EXAMPLES / example).read_text())
    assert client.post("/api/v1/apps", json=body, headers=auth(ADMIN)).status_code == 201


def test_starting_the_reference_pipeline_registers_it_with_a_policy_per_service(
    client: TestClient,
) -> None:
    reply = client.post(
        "/api/v1/runs", json={"system": "pipeline", "rate": 1.0}, headers=auth(ADMIN)
    )
    assert reply.status_code == 201, reply.text
    run = reply.json()
    try:
        shown = client.get("/api/v1/apps/pipeline-live").json()
        assert [stage["name"] for stage in shown["stages"]] == ["camera", "classify", "aggregate"]
        policies = client.get("/api/v1/apps/pipeline-live/policies").json()
        assert sorted(p["service"] for p in policies) == ["accurate", "fast"]
        fast = client.get("/api/v1/apps/pipeline-live/services/fast/policy").json()
        assert fast["document"]["models"] == ["small", "medium"]
    finally:
        stopped = client.delete(f"/api/v1/runs/{run['id']}", headers=auth(ADMIN))
        assert stopped.json()["status"] != "running"


def test_energy_per_stage_sums_to_the_pipelines_and_carbon_follows_the_node(
    client: TestClient,
) -> None:
    token = register(client)["token"]
    joules = {"frames": 0.1, "fast": 0.5, "accurate": 2.0, "vote": 0.05}
    models = {"frames": "raw", "fast": "linear", "accurate": "lstm", "vote": "m"}
    for service, spent in joules.items():
        batch = traced(service, models[service], 10, 0.9)
        for sample in batch:
            sample["energy_j"] = spent
        reply = client.post(
            "/api/v1/apps/detect/telemetry",
            json={"instance": f"{service}-1", "samples": batch},
            headers=auth(token),
        )
        assert reply.status_code == 200, reply.text
    # the accurate service's node runs on a clean grid
    client.post(
        "/api/v1/apps/detect/services/accurate/instances",
        json={"name": "accurate-1", "node": "hydro-1", "labels": {"carbon_g_per_kwh": "20"}},
        headers=auth(token),
    )

    query = "start=0&end=5000&carbon_g_per_kwh=400"
    by_stage = client.get(f"/api/v1/apps/detect/energy?by=stage&{query}").json()
    assert by_stage["requests"] == 10
    assert by_stage["total_j"] == pytest.approx(10 * sum(joules.values()))
    stages = by_stage["groups"]
    assert set(stages) == {"camera", "classify", "aggregate"}
    assert sum(g["j_per_request"] for g in stages.values()) == pytest.approx(2.65)
    assert sum(g["share"] for g in stages.values()) == pytest.approx(1.0)
    assert stages["classify"]["share"] == pytest.approx(2.5 / 2.65)

    by_service = client.get(f"/api/v1/apps/detect/energy?by=service&{query}").json()
    accurate, fast = by_service["groups"]["accurate"], by_service["groups"]["fast"]
    assert accurate["g_co2e"] == pytest.approx(20.0 / 3.6e6 * 20)  # 20 J at 20 g/kWh
    assert fast["g_co2e"] == pytest.approx(5.0 / 3.6e6 * 400)  # 5 J at the default
    assert by_service["total_g_co2e"] == pytest.approx(
        sum(g["g_co2e"] for g in by_service["groups"].values())
    )
    assert client.get("/api/v1/apps/detect/energy?by=model").status_code == 422
