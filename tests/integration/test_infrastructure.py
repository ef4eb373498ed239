"""The infrastructure over the API: a node inventory (ROHE's add_node as it is), an app's
services placed on it, manifests rendered from the plan, and a latency SLO broken by a replica
on a saturated node remedied by a migrate action — replanned incrementally, in force once the
system reports it applied, and not repeated while the service cools down. A deployment
carried out through Kubernetes with no cluster fails its action, naming why, and its plan
never comes into force."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from test_contracts_live import send
from test_pipelines import register
from test_server_api import ADMIN, auth

from harmonia.server.app import create_app
from harmonia.store import Store, sqlite_url

ROHE = Path(__file__).resolve().parents[1] / "data" / "rohe"
NODES = """
nodes:
  - {name: edge-1, cores: 2, memory_mib: 4096}
  - {name: edge-2, cores: 2, memory_mib: 4096}
  - {name: edge-3, cores: 4, memory_mib: 8192, labels: {site: cloud}}
"""
DEPLOYMENT = """
placer: first-fit
cooldown_s: 600
executor: {executor}
services:
  - {{name: fast, cpu_millicores: 900, memory_mib: 512, replicas: 2, anti_affinity: [fast]}}
  - {{name: vote, cpu_millicores: 1000, memory_mib: 256, node_selector: {{site: cloud}}}}
"""
CONTRACT = """
slos:
  - name: fast-latency
    scope: service
    target: fast
    condition: p99(latency_ms) <= 100
    window: 20 samples
    then: scale_or_migrate
"""


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    store = Store(sqlite_url(tmp_path))
    with TestClient(create_app(store, ADMIN, contract_check_s=0)) as test_client:
        yield test_client
    store.close()


def deploy(client: TestClient, token: str, executor: str = "effector") -> dict[str, Any]:
    assert client.put("/api/v1/nodes", content=NODES, headers=auth(ADMIN)).status_code == 201
    reply = client.put(
        "/api/v1/apps/detect/deployment",
        content=DEPLOYMENT.format(executor=executor),
        headers=auth(token),
    )
    assert reply.status_code == 201, reply.text
    return dict(reply.json())


def test_rohe_nodes_are_taken_as_they_are_and_only_from_the_admin(client: TestClient) -> None:
    text = (ROHE / "add_node.json").read_text()
    assert client.put("/api/v1/nodes", content=text).status_code == 401
    reply = client.put("/api/v1/nodes", content=text, headers=auth(ADMIN))
    assert reply.status_code == 201, reply.text
    nodes = {n["name"]: n for n in client.get("/api/v1/nodes").json()}
    assert len(nodes) == 9 and "Jetson_xavier_06" in nodes
    assert nodes["RaspberryPi_02"]["spec"]["cpu_millicores"] == 4000
    bad = client.put("/api/v1/nodes", content="nodes: [{name: x, cores: 0}]", headers=auth(ADMIN))
    assert bad.status_code == 422 and "nodes.0" in bad.text


def test_an_app_is_placed_explained_and_rendered(client: TestClient) -> None:
    token = register(client)["token"]
    assert client.get("/api/v1/apps/detect/deployment").status_code == 404
    placed = deploy(client, token)
    plan = placed["plan"]
    assert placed["version"] == 1 and placed["status"] == "applied"
    assert [(p["service"], p["node"]) for p in plan["placements"]] == [
        ("fast", "edge-1"),
        ("fast", "edge-2"),
        ("vote", "edge-3"),
    ]
    assert {e["service"] for e in plan["explanations"]} == {"fast", "vote"}
    nodes = {n["name"]: n for n in client.get("/api/v1/nodes").json()}
    assert nodes["edge-1"]["services"] == [{"app": "detect", "service": "fast", "replicas": 1}]
    assert nodes["edge-1"]["utilisation"] == pytest.approx(0.45)

    manifests = client.get("/api/v1/apps/detect/deployment/manifests")
    assert manifests.status_code == 200
    documents = list(yaml.safe_load_all(manifests.text))
    kinds = sorted(d["kind"] for d in documents if d)
    assert kinds == ["Deployment", "Deployment", "Deployment", "Service", "Service"]

    wrong = client.put(
        "/api/v1/apps/detect/deployment",
        content="services: [{name: nope, cpu_millicores: 1}]",
        headers=auth(token),
    )
    assert wrong.status_code == 422 and "services.0.name" in wrong.text
    assert "detect has no service 'nope'" in wrong.text


def test_a_replica_on_a_saturated_node_is_migrated_once_applied_and_cools_down(
    client: TestClient,
) -> None:
    token = register(client)["token"]
    for name, node in (("fast-1", "edge-1"), ("fast-2", "edge-2")):
        client.post(
            "/api/v1/apps/detect/services/fast/instances",
            json={"name": name, "node": node},
            headers=auth(token),
        )
    deploy(client, token)
    # edge-2 is saturated: another app's work takes the rest of it
    other = client.put(
        "/api/v1/nodes",
        content="nodes: [{name: edge-2, cores: 1, memory_mib: 4096}]",
        headers=auth(ADMIN),
    )
    assert other.status_code == 201
    assert client.put("/api/v1/apps/detect/contract", content=CONTRACT, headers=auth(token))

    send(client, token, 0, 40, slow="fast-2")
    [result] = client.post("/api/v1/apps/detect/contract/check", headers=auth(token)).json()
    assert result["status"] == "violated"
    [violation] = client.get("/api/v1/apps/detect/violations").json()
    action = client.get("/api/v1/apps/detect/actions").json()[0]
    assert violation["action_id"] == action["id"]
    assert action["kind"] == "migrate" and action["service"] == "fast"
    assert "node edge-2 is saturated" in action["reason"]
    [move] = action["context"]["moves"]
    assert (move["source"], move["target"]) == ("edge-2", "edge-3")

    history = client.get("/api/v1/apps/detect/deployment").json()
    assert history["in_force"]["version"] == 1  # not before the system applied it
    assert history["history"][0]["status"] == "pending"
    # the fast service pulls it with its next batch, carries it out and says so
    replies = send(client, token, 40, 2, slow=None)
    assert [a["id"] for a in replies["fast-1"]] == [action["id"]]
    done = client.post(
        f"/api/v1/apps/detect/actions/{action['id']}/result",
        json={"status": "applied", "reason": "moved"},
        headers=auth(token),
    )
    assert done.status_code == 200, done.text
    in_force = client.get("/api/v1/apps/detect/deployment").json()["in_force"]
    assert in_force["version"] == 2 and in_force["action_id"] == action["id"]
    nodes = sorted(p["node"] for p in in_force["plan"]["placements"] if p["service"] == "fast")
    assert nodes == ["edge-1", "edge-3"]

    # still violated: a new episode, but the service cools down — no second tactic
    send(client, token, 100, 20, slow=None)
    client.post("/api/v1/apps/detect/contract/check", headers=auth(token))
    send(client, token, 200, 40, slow="fast-2")
    client.post("/api/v1/apps/detect/contract/check", headers=auth(token))
    kinds = [a["kind"] for a in client.get("/api/v1/apps/detect/actions").json()]
    assert kinds.count("migrate") + kinds.count("scale") == 1


def test_a_kubernetes_executor_without_a_cluster_fails_the_action_saying_why(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", "/nonexistent/kubeconfig")
    token = register(client)["token"]
    for name, node in (("fast-1", "edge-1"), ("fast-2", "edge-2")):
        client.post(
            "/api/v1/apps/detect/services/fast/instances",
            json={"name": name, "node": node},
            headers=auth(token),
        )
    deploy(client, token, executor="kubernetes")
    client.put("/api/v1/apps/detect/contract", content=CONTRACT, headers=auth(token))
    send(client, token, 0, 40, slow="fast-2")
    client.post("/api/v1/apps/detect/contract/check", headers=auth(token))
    [action] = client.get("/api/v1/apps/detect/actions").json()
    assert action["kind"] == "scale"  # edge-2 is not saturated: one more replica
    assert action["status"] in ("delivered", "failed")
    import time

    deadline = time.monotonic() + 30
    while action["status"] != "failed" and time.monotonic() < deadline:
        time.sleep(0.1)
        action = client.get("/api/v1/apps/detect/actions").json()[0]
    assert action["status"] == "failed" and "Kubernetes" in action["detail"]
    history = client.get("/api/v1/apps/detect/deployment").json()
    assert history["in_force"]["version"] == 1
    assert history["history"][0]["status"] == "failed"


def test_the_nodes_command_puts_lists_and_removes(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from harmonia.cli import app
    from harmonia.server.background import BackgroundServer

    store = Store(sqlite_url(tmp_path))
    inventory = tmp_path / "nodes.yaml"
    inventory.write_text(NODES)
    runner = CliRunner()
    try:
        with BackgroundServer(store, ADMIN) as url:

            def harmonia(*args: str, token: str = ADMIN) -> tuple[int, str]:
                result = runner.invoke(app, ["nodes", *args, "--server", url, "--token", token])
                return result.exit_code, result.output

            assert harmonia("put", str(inventory)) == (0, "3 node(s) in the inventory\n")
            code, out = harmonia("put", str(inventory), token="wrong")
            assert code == 2 and "401" in out
            code, out = harmonia("list", token="")
            assert code == 0 and "edge-1" in out and "edge-3" in out, out
            assert harmonia("remove", "edge-2")[0] == 0
            code, out = harmonia("remove", "edge-2")
            assert code == 2 and "not in the inventory" in out
            assert "edge-2" not in harmonia("list")[1]
    finally:
        store.close()
