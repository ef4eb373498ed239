"""The node inventory and each application's deployment: nodes with what runs on them, the
placement plan in force with its explanations and history, and its Kubernetes manifests."""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from harmonia.core.application import Name
from harmonia.orchestration import Plan
from harmonia.server.api import API
from harmonia.server.api.deps import Admin, AppAuth, KnownApp, ServerDep
from harmonia.server.infrastructure import deployment_view
from harmonia.server.openapi import document_body, errors, text_reply

router = APIRouter(prefix=API)

NODES_BODY = document_body(
    {
        "anyOf": [
            {"type": "object", "description": "nodes: [...] (docs/orchestration.md) or ROHE's"},
            {"type": "array", "items": {"type": "object"}, "description": "the list of nodes"},
        ]
    },
    "The node inventory as YAML or JSON: Harmonia's (nodes: a list of nodes, or the list "
    "itself) or ROHE's add_node JSON; nodes not named stay as they are.",
    {"nodes": [{"name": "edge-1", "cores": 4, "memory_mib": 4096}]},
)
DEPLOYMENT_BODY = document_body(
    {"type": "object", "description": "services: [...] and placement settings"},
    "How the app is deployed (docs/orchestration.md): its services' requirements (or ROHE's "
    "add_service), the placer, the objective, the tactics' cooldown and limits, the executor.",
    {"services": [{"name": "fast", "cpu_millicores": 500, "replicas": 2}], "placer": "best-fit"},
)


class HostedOut(BaseModel):
    app: str
    service: str
    replicas: int


class NodeOut(BaseModel):
    name: str
    spec: dict[str, Any]
    allocated_cpu_millicores: int
    allocated_memory_mib: int
    utilisation: float | None
    services: list[HostedOut]


class DeploymentOut(BaseModel):
    version: int
    status: str
    reason: str
    action_id: int | None
    created: float
    document: dict[str, Any]
    plan: Plan


class DeploymentsOut(BaseModel):
    app: str
    in_force: DeploymentOut
    history: list[DeploymentOut]


@router.put(
    "/nodes",
    status_code=201,
    response_model=list[NodeOut],
    dependencies=[Admin],
    responses=errors(401, 413, 422, 503),
    openapi_extra=NODES_BODY,
)
async def put_nodes(request: Request, server: ServerDep) -> list[dict[str, Any]]:
    """Add nodes to the inventory or replace their entries (admin)."""
    text = (await request.body()).decode("utf-8", errors="replace")
    await run_in_threadpool(server.infrastructure.put_nodes, text)
    return await run_in_threadpool(server.infrastructure.nodes_view)


@router.get("/nodes", response_model=list[NodeOut], responses=errors(503))
def get_nodes(server: ServerDep) -> list[dict[str, Any]]:
    """Every node of the inventory with the replicas the deployments in force put on it,
    what they request, and the share of the node's CPU that is."""
    return server.infrastructure.nodes_view()


class RemovedOut(BaseModel):
    name: str
    removed: bool


@router.delete(
    "/nodes/{node}",
    response_model=RemovedOut,
    dependencies=[Admin],
    responses=errors(401, 404, 422, 503),
)
def delete_node(node: str, server: ServerDep) -> dict[str, Any]:
    """Take a node out of the inventory (admin); deployments keep their plans until the
    next placement."""
    server.store.remove_node_spec(node)
    return {"name": node, "removed": True}


@router.put(
    "/apps/{name}/deployment",
    status_code=201,
    response_model=DeploymentOut,
    responses=errors(401, 403, 404, 413, 422, 503),
    openapi_extra=DEPLOYMENT_BODY,
)
async def put_deployment(app: AppAuth, request: Request, server: ServerDep) -> dict[str, Any]:
    """Place the app's services on the inventory with the chosen placer; the plan (with why
    each replica went where) is in force at once, as a new version."""
    text = (await request.body()).decode("utf-8", errors="replace")
    stored = await run_in_threadpool(server.infrastructure.deploy, app, text)
    return deployment_view(stored)


@router.get(
    "/apps/{name}/deployment", response_model=DeploymentsOut, responses=errors(404, 422, 503)
)
def get_deployment(app: KnownApp, server: ServerDep) -> dict[str, Any]:
    """The deployment in force, and every version (newest first) with the tactic and
    action that proposed it."""
    stored, _, _ = server.infrastructure.deployment(app)
    return {
        "app": app.name,
        "in_force": deployment_view(stored),
        "history": [deployment_view(d) for d in server.store.deployments(app)],
    }


@router.get(
    "/apps/{name}/deployment/manifests",
    response_class=Response,
    responses={
        200: text_reply("application/yaml", "Deployments and Services, one YAML document each"),
        **errors(404, 422, 503),
    },
)
def get_manifests(app: KnownApp, server: ServerDep, namespace: Name | None = None) -> Any:
    """The deployment in force as Kubernetes Deployments and Services (YAML), validated
    against the Kubernetes schemas: ``kubectl apply -f`` or ``harmonia deploy apply``."""
    text = server.infrastructure.manifests(app, namespace)
    return Response(text, media_type="application/yaml")
