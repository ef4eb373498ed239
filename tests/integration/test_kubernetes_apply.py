"""`apply_manifests` over real HTTP with the real `kubernetes` client: against a fake API
server on loopback that records the server-side-apply requests, and against no cluster at
all (a closed port, a listener that never answers). No Kubernetes cluster runs here."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from harmonia.orchestration import ObjectiveValue, Placement, Plan, ServiceRequirement
from harmonia.orchestration.kubernetes import (
    APPLY_PATCH,
    ApplyError,
    ClusterUnreachable,
    KubeTarget,
    ManifestError,
    RenderOptions,
    apply_manifests,
    read_manifests,
    render_plan,
)

TOKEN = "fake-token"
#: a hang guard for the no-cluster tests, far above the one-second timeouts they set
HANG_GUARD_S = 30.0


@dataclass(frozen=True)
class Request:
    """One request the fake API server received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


class FakeApiServer:
    """The few endpoints of a Kubernetes API server that apply uses: ``GET /version``, PATCH
    of namespaced objects (stored unless in a dry run; 201 on create, 200 on update, or a
    ``Status`` error for paths told to refuse), and, for pruning, listing them by label
    selector and DELETE."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.objects: dict[str, Any] = {}
        self.refuse: dict[str, tuple[int, str]] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _record(self) -> Request:
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                request = Request(
                    self.command,
                    url.path,
                    parse_qs(url.query),
                    {k.lower(): v for k, v in self.headers.items()},
                    json.loads(raw) if raw else None,
                )
                server.requests.append(request)
                return request

            def _send(self, status: int, payload: Any) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                request = self._record()
                if request.path.rstrip("/") == "/version":
                    self._send(200, {"major": "1", "minor": "33", "gitVersion": "v1.33.0"})
                    return
                selector = (request.query.get("labelSelector") or [""])[0]
                items = [
                    body
                    for path, body in sorted(server.objects.items())
                    if path.rsplit("/", 1)[0] == request.path
                    and _selects(selector, body["metadata"].get("labels") or {})
                ]
                self._send(200, {"kind": "List", "apiVersion": "v1", "items": items})

            def do_DELETE(self) -> None:
                request = self._record()
                if request.path not in server.objects:
                    self._send(404, _status(404, "NotFound", f"{request.path} not found"))
                    return
                if request.query.get("dryRun") != ["All"]:
                    del server.objects[request.path]
                self._send(200, _status(200, "", "deleted") | {"status": "Success"})

            def do_PATCH(self) -> None:
                request = self._record()
                if request.path in server.refuse:
                    code, message = server.refuse[request.path]
                    self._send(code, _status(code, "Invalid", message))
                    return
                existed = request.path in server.objects
                answer = dict(request.body)
                answer["metadata"] = {**answer["metadata"], "uid": "u-1", "resourceVersion": "1"}
                if request.query.get("dryRun") != ["All"]:
                    server.objects[request.path] = answer
                self._send(200 if existed else 201, answer)

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._http.server_address[1]
        self._thread = threading.Thread(
            target=self._http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> FakeApiServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.shutdown()
        self._http.server_close()

    @property
    def patches(self) -> list[Request]:
        return [r for r in self.requests if r.method == "PATCH"]


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def _selects(selector: str, labels: dict[str, str]) -> bool:
    """The two forms of label selector apply sends: ``k=v`` and ``k in (a,b)``."""
    for term in re.findall(r"[^,(]+(?:\([^)]*\))?", selector):
        if " in (" in term:
            key, values = term.split(" in (")
            if labels.get(key.strip()) not in values.rstrip(")").split(","):
                return False
        else:
            key, value = term.split("=")
            if labels.get(key.strip()) != value:
                return False
    return True


def _kubeconfig(tmp_path: Path, server: str, context: str = "lab") -> Path:
    """A kubeconfig with one context, ``context``, for the cluster at ``server``."""
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": server}}],
                "users": [{"name": "u", "user": {"token": TOKEN}}],
                "contexts": [{"name": context, "context": {"cluster": "c", "user": "u"}}],
                "current-context": context,
            }
        )
    )
    return path


@pytest.fixture
def fake() -> Iterator[FakeApiServer]:
    with FakeApiServer() as server:
        yield server


def _rendered(*nodes: str, app: str = "lab") -> list[dict[str, Any]]:
    """Manifests of ``detector``, one replica on each of ``nodes``, in namespace ``ml``."""
    plan = Plan(
        placer="best-fit",
        status="heuristic",
        objective=ObjectiveValue(name="nodes", value=len(set(nodes)), unit="nodes"),
        placements=[
            Placement(service="detector", replica=i, node=node) for i, node in enumerate(nodes)
        ],
    )
    service = ServiceRequirement(
        name="detector", cpu_millicores=500, memory_mib=600, replicas=3, image="od:2", ports=[4002]
    )
    options = RenderOptions(namespace="ml", app=app)
    return render_plan(plan, [service], options=options).documents


@pytest.fixture
def documents() -> list[dict[str, Any]]:
    """A Service and two Deployments: ``detector`` with 2 replicas on pi-1, 1 on jetson-1."""
    return _rendered("pi-1", "pi-1", "jetson-1")


def _target(tmp_path: Path, server: str, **kwargs: Any) -> KubeTarget:
    return KubeTarget(kubeconfig=_kubeconfig(tmp_path, server), namespace="ml", **kwargs)


def _query(request: Any) -> dict[str, list[str]]:
    """The request's query, ``force`` as the API server reads it: the client writes the
    boolean as ``True`` (before 37) or ``true``, both of which Go's ParseBool takes."""
    query = dict(request.query)
    if "force" in query:
        query["force"] = [value.lower() for value in query["force"]]
    return query


def test_apply_sends_one_server_side_apply_patch_per_document(
    fake: FakeApiServer, documents: list[dict[str, Any]], tmp_path: Path
) -> None:
    applied = apply_manifests(documents, _target(tmp_path, f"http://127.0.0.1:{fake.port}"))

    assert [r.path for r in fake.requests] == [
        "/version/",
        "/api/v1/namespaces/ml/services/detector",
        "/apis/apps/v1/namespaces/ml/deployments/detector-jetson-1",
        "/apis/apps/v1/namespaces/ml/deployments/detector-pi-1",
    ]
    for request, document in zip(fake.patches, documents, strict=True):
        assert request.headers["content-type"] == APPLY_PATCH
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        assert _query(request) == {"fieldManager": ["harmonia"], "force": ["true"]}
        assert request.body == document  # the whole object, as rendered
    assert [str(a) for a in applied] == [
        "Service/detector created in ml",
        "Deployment/detector-jetson-1 created in ml",
        "Deployment/detector-pi-1 created in ml",
    ]
    assert len(fake.objects) == 3


def test_applying_again_updates_the_same_objects(
    fake: FakeApiServer, documents: list[dict[str, Any]], tmp_path: Path
) -> None:
    target = _target(tmp_path, f"http://127.0.0.1:{fake.port}")
    apply_manifests(documents, target)
    again = apply_manifests(documents, target)
    assert [a.action for a in again] == ["configured"] * 3
    assert len(fake.objects) == 3


def test_dry_run_sends_dry_run_all_and_stores_nothing(
    fake: FakeApiServer, documents: list[dict[str, Any]], tmp_path: Path
) -> None:
    applied = apply_manifests(
        documents, _target(tmp_path, f"http://127.0.0.1:{fake.port}"), dry_run=True
    )
    assert [_query(r) for r in fake.patches] == [
        {"fieldManager": ["harmonia"], "force": ["true"], "dryRun": ["All"]}
    ] * 3
    assert all(a.dry_run for a in applied)
    assert fake.objects == {}


def test_documents_without_a_namespace_go_to_the_targets(
    fake: FakeApiServer, documents: list[dict[str, Any]], tmp_path: Path
) -> None:
    for document in documents:
        del document["metadata"]["namespace"]
    target = KubeTarget(
        kubeconfig=_kubeconfig(tmp_path, f"http://127.0.0.1:{fake.port}"), namespace="staging"
    )
    apply_manifests(documents, target)
    assert all(r.path.split("/")[-3] == "staging" for r in fake.patches)
    assert all(r.body["metadata"]["namespace"] == "staging" for r in fake.patches)


def test_another_namespace_asked_for_is_refused_before_anything_is_sent(
    fake: FakeApiServer, documents: list[dict[str, Any]], tmp_path: Path
) -> None:
    with pytest.raises(ManifestError, match=r"\[0\] Service/detector metadata.namespace"):
        apply_manifests(
            documents, _target(tmp_path, f"http://127.0.0.1:{fake.port}"), namespace="prod"
        )
    assert fake.requests == []


def test_a_refused_document_names_itself_the_servers_reason_and_what_went_before(
    fake: FakeApiServer, documents: list[dict[str, Any]], tmp_path: Path
) -> None:
    fake.refuse["/apis/apps/v1/namespaces/ml/deployments/detector-pi-1"] = (
        422,
        'Deployment.apps "detector-pi-1" is invalid: spec.replicas: must be >= 0',
    )
    with pytest.raises(ApplyError) as caught:
        apply_manifests(documents, _target(tmp_path, f"http://127.0.0.1:{fake.port}"))
    error = caught.value
    assert (error.document, error.status) == ("Deployment/detector-pi-1", 422)
    assert "spec.replicas: must be >= 0" in str(error)
    assert error.applied == ["Service/detector", "Deployment/detector-jetson-1"]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_no_cluster_at_a_closed_port_fails_fast_naming_context_and_host(
    documents: list[dict[str, Any]], tmp_path: Path
) -> None:
    host = f"http://127.0.0.1:{_closed_port()}"
    started = time.monotonic()
    with pytest.raises(ClusterUnreachable) as caught:
        apply_manifests(documents, _target(tmp_path, host, connect_timeout_s=1.0))
    assert time.monotonic() - started < HANG_GUARD_S
    message = str(caught.value)
    assert f"no Kubernetes cluster answered at {host} (context 'lab')" in message
    assert "cannot connect" in message and "refused" in message


def test_a_cluster_that_never_answers_times_out_with_the_timeout_named(
    documents: list[dict[str, Any]], tmp_path: Path
) -> None:
    with socket.socket() as silent:  # accepts connections (the kernel does), never replies
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        host = f"http://127.0.0.1:{silent.getsockname()[1]}"
        target = _target(tmp_path, host, connect_timeout_s=0.5, read_timeout_s=0.5)
        started = time.monotonic()
        with pytest.raises(ClusterUnreachable) as caught:
            apply_manifests(documents, target)
        assert time.monotonic() - started < HANG_GUARD_S
    assert caught.value.host == host
    assert "no answer within 0.5 s" in str(caught.value)


def test_prune_deletes_what_the_new_plan_no_longer_has(tmp_path: Path, fake: FakeApiServer) -> None:
    target = _target(tmp_path, f"http://127.0.0.1:{fake.port}")
    apply_manifests(_rendered("pi-1", "pi-1", "jetson-1"), target)
    apply_manifests(_rendered("pi-9", app="other"), target)  # another application's
    fake.requests.clear()

    done = apply_manifests(_rendered("pi-2", "pi-2"), target, prune=True)

    assert [str(a) for a in done] == [
        "Service/detector configured in ml",
        "Deployment/detector-pi-2 created in ml",
        "Deployment/detector-jetson-1 pruned from ml",
        "Deployment/detector-pi-1 pruned from ml",
    ]
    lists = [r for r in fake.requests if r.method == "GET" and "labelSelector" in r.query]
    assert lists[0].query["labelSelector"] == [
        "app.kubernetes.io/managed-by=harmonia,app.kubernetes.io/part-of in (lab)"
    ]
    assert sorted(p.rsplit("/", 1)[1] for p in fake.objects) == [
        "detector",  # the Service, still in the plan
        "detector-pi-2",
        "detector-pi-9",  # the other application's, out of scope
    ]


def test_a_dry_run_prune_deletes_nothing(tmp_path: Path, fake: FakeApiServer) -> None:
    target = _target(tmp_path, f"http://127.0.0.1:{fake.port}")
    apply_manifests(_rendered("pi-1"), target)
    done = apply_manifests(_rendered("pi-2"), target, prune=True, dry_run=True)
    deletes = [r for r in fake.requests if r.method == "DELETE"]
    assert [r.query for r in deletes] == [{"dryRun": ["All"]}]
    assert str(done[-1]) == "Deployment/detector-pi-1 pruned from ml (dry run)"
    assert "/apis/apps/v1/namespaces/ml/deployments/detector-pi-1" in fake.objects


def test_the_command_renders_and_applies_rohes_example_dry_run(
    tmp_path: Path, fake: FakeApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from harmonia.cli import app

    rohe = Path(__file__).parents[1] / "data" / "rohe"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HARMONIA_KUBE_CONFIG", str(tmp_path / "kubeconfig"))
    _kubeconfig(tmp_path, f"http://127.0.0.1:{fake.port}", context="edge-lab")
    runner = CliRunner()
    inputs = ["--nodes", str(rohe / "add_node.yaml"), "--services", str(rohe / "add_service.yaml")]
    rendered = runner.invoke(
        app, ["deploy", "render", *inputs, "--namespace", "ml", "--out", "m.yaml"]
    )
    assert rendered.exit_code == 0, rendered.output

    result = runner.invoke(
        app, ["deploy", "apply", "--manifests", "m.yaml", "--context", "edge-lab", "--dry-run"]
    )

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    documents = read_manifests(tmp_path / "m.yaml")
    assert len(lines) == len(fake.patches) == len(documents)
    assert [r.body for r in fake.patches] == documents
    assert all(line.endswith("created in ml (dry run)") for line in lines)
    assert all(r.query["dryRun"] == ["All"] for r in fake.patches)
    assert all(r.headers["content-type"] == APPLY_PATCH for r in fake.patches)
    assert fake.objects == {}
