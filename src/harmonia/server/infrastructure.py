"""The infrastructure the server knows: the node inventory, each application's deployment
(its services' requirements placed on the nodes by a placer, version by version), and the
infrastructure tactics — ``scale`` and ``migrate`` — a violated SLO asks for.

A tactic is replanned incrementally (`harmonia.orchestration.tactics`) from the deployment in
force, stored as a ``pending`` version tied to its action, and carried out by the app's
executor: the service's effector (pushed or pulled, as every action) or, for a deployment
whose ``executor`` is ``kubernetes``, the Kubernetes client applying the new plan to the app's
domain target. The version is in force once its action is applied; a failed one never is.
A service gets at most one tactic per ``cooldown_s``, and none while one is on its way.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harmonia.core.actions import ActionKind
from harmonia.core.errors import Issue, PolicyError
from harmonia.orchestration import (
    OBJECTIVES,
    InventoryError,
    Node,
    Objective,
    Plan,
    ServiceRequirement,
    SolverUnavailable,
    create_placer,
)
from harmonia.orchestration.loaders import parse_nodes, parse_services
from harmonia.orchestration.tactics import Replan, choose_tactic, migrate, scale, utilisation
from harmonia.policies import load_document
from harmonia.store import App, NotFound, StoredAction, StoredDeployment

if TYPE_CHECKING:
    from harmonia.server.service import Server

logger = logging.getLogger("harmonia.server.infrastructure")

Executor = Literal["effector", "kubernetes"]
#: the action kinds that change the infrastructure
INFRASTRUCTURE_KINDS = frozenset({ActionKind.SCALE, ActionKind.MIGRATE})
#: the longest a placer may take in a request (the optimal one stops at its time limit)
MAX_TIME_LIMIT_S = 60.0


class DeploymentSpec(BaseModel):
    """How an application is deployed: its services' requirements (Harmonia's or ROHE's
    ``add_service`` form) and how they are placed and adapted."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    services: list[ServiceRequirement] = Field(min_length=1, max_length=1000)
    placer: str = Field(default="best-fit", min_length=1, max_length=64)
    objective: Objective = "nodes"
    time_limit_s: float = Field(default=10.0, gt=0, le=MAX_TIME_LIMIT_S)
    #: the least time between two tactics on one service
    cooldown_s: float = Field(default=300.0, ge=0, le=86_400)
    #: the most replicas ``scale`` gives each service (none: as many as fit)
    max_replicas: dict[str, int] = Field(default_factory=dict)
    #: node CPU utilisation from which ``migrate`` moves a replica away
    saturation: float = Field(default=0.9, gt=0, le=1)
    executor: Executor = "effector"


def read_nodes(text: str) -> list[Node]:
    """Nodes from YAML or JSON (``nodes: [...]`` or ROHE's ``add_node``), errors by field."""
    try:
        return parse_nodes(load_document(text))
    except InventoryError as error:
        raise PolicyError(list(error.issues)) from None


def read_deployment(text: str, app: App) -> DeploymentSpec:
    """A deployment spec for ``app``; every requirement must name one of its services."""
    document = load_document(text)
    if not isinstance(document, dict):
        raise PolicyError([Issue("", "a deployment is a mapping with 'services'")])
    try:
        services = parse_services(document)
        spec = DeploymentSpec.model_validate({**document, "services": services})
    except InventoryError as error:
        raise PolicyError(list(error.issues)) from None
    except ValidationError as error:
        raise PolicyError(
            [Issue(".".join(map(str, e["loc"])), e["msg"]) for e in error.errors()]
        ) from None
    known = set(app.services)
    issues = [
        Issue(f"services.{i}.name", f"{app.name} has no service {s.name!r}")
        for i, s in enumerate(spec.services)
        if s.name not in known
    ]
    issues += [
        Issue(f"max_replicas.{name}", f"{app.name} has no service {name!r}")
        for name in spec.max_replicas
        if name not in known
    ]
    if spec.objective not in OBJECTIVES:
        issues.append(Issue("objective", f"one of {', '.join(OBJECTIVES)}"))
    if issues:
        raise PolicyError(issues)
    return spec


class Infrastructure:
    """The server's nodes, deployments and infrastructure tactics."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self._lock = threading.Lock()

    # -- nodes ---------------------------------------------------------------------------
    def put_nodes(self, text: str) -> list[Node]:
        """Add or replace inventory entries (other nodes stay)."""
        nodes = read_nodes(text)
        self.server.store.put_node_specs([n.model_dump(mode="json") for n in nodes])
        return nodes

    def nodes(self) -> list[Node]:
        return [Node.model_validate(spec) for spec in self.server.store.node_specs()]

    def nodes_view(self) -> list[dict[str, Any]]:
        """Each node with what the deployments in force place on it: the replicas per app
        and service, the CPU and memory they request, and the share of the node that is."""
        nodes = self.nodes()
        by_name = {n.name: n for n in nodes}
        hosted: dict[str, list[dict[str, Any]]] = {n.name: [] for n in nodes}
        cpu = dict.fromkeys(by_name, 0)
        memory = dict.fromkeys(by_name, 0)
        for app_name, stored in self.server.store.deployments_in_force().items():
            spec = DeploymentSpec.model_validate(stored.document)
            demand = {s.name: s for s in spec.services}
            counts: dict[tuple[str, str], int] = {}
            for placement in Plan.model_validate(stored.plan).placements:
                if placement.node in by_name and placement.service in demand:
                    key = (placement.node, placement.service)
                    counts[key] = counts.get(key, 0) + 1
                    cpu[placement.node] += demand[placement.service].cpu_millicores
                    memory[placement.node] += demand[placement.service].memory_mib
            for (node, service), replicas in sorted(counts.items()):
                hosted[node].append({"app": app_name, "service": service, "replicas": replicas})
        return [
            {
                "name": n.name,
                "spec": n.model_dump(mode="json"),
                "allocated_cpu_millicores": cpu[n.name],
                "allocated_memory_mib": memory[n.name],
                "utilisation": cpu[n.name] / n.cpu_millicores if n.cpu_millicores else None,
                "services": hosted[n.name],
            }
            for n in nodes
        ]

    # -- deployments -----------------------------------------------------------------------
    def deploy(self, app: App, text: str) -> StoredDeployment:
        """Place the app's services on the inventory and put the plan in force."""
        spec = read_deployment(text, app)
        nodes = self.nodes()
        if not nodes:
            raise PolicyError([Issue("nodes", "the inventory is empty: PUT /api/v1/nodes first")])
        plan = self._place(spec, nodes)
        why = f"placed by {plan.placer}: {len(plan.placements)} replica(s) on "
        why += f"{len(plan.nodes_used)} node(s), {len(plan.unplaced)} unplaced"
        return self.server.store.add_deployment(
            app,
            spec.model_dump(mode="json"),
            plan.model_dump(mode="json"),
            status="applied",
            reason=why,
        )

    def _place(self, spec: DeploymentSpec, nodes: Sequence[Node]) -> Plan:
        try:
            placer, _ = create_placer(spec.placer, spec.objective, spec.time_limit_s)
        except (LookupError, TypeError, ValueError) as error:
            raise PolicyError([Issue("placer", str(error))]) from None
        try:
            return placer.place(nodes, spec.services)
        except InventoryError as error:
            raise PolicyError(list(error.issues)) from None
        except (SolverUnavailable, TypeError, ValueError) as error:
            raise PolicyError([Issue("placer", str(error))]) from None

    def deployment(self, app: App) -> tuple[StoredDeployment, DeploymentSpec, Plan]:
        """The deployment in force, its spec and its plan (`NotFound` without one)."""
        stored = self.server.store.deployment(app)
        return stored, DeploymentSpec.model_validate(stored.document), _plan(stored)

    def manifests(self, app: App, namespace: str | None = None) -> str:
        """The deployment in force as Kubernetes manifests (YAML), validated."""
        from harmonia.orchestration.kubernetes import (
            ManifestError,
            RenderError,
            RenderOptions,
            dump_manifests,
            render_plan,
            validate_manifests,
        )

        _, spec, plan = self.deployment(app)
        options = RenderOptions(namespace=namespace or self._namespace(app), app=app.name)
        try:
            rendered = render_plan(plan, spec.services, self.nodes(), options)
            validate_manifests(rendered.documents, options.kubernetes_version)
        except (RenderError, ManifestError) as error:
            raise PolicyError(list(error.issues)) from None
        return dump_manifests(rendered.documents)

    def _namespace(self, app: App) -> str:
        try:
            return self.server.store.domain(app.domain).namespace or "default"
        except NotFound:
            return "default"

    # -- tactics -----------------------------------------------------------------------------
    def tactic(
        self,
        app: App,
        kind: ActionKind | None,
        service: str,
        node: str | None,
        now: float,
        reported: Mapping[str, float] | None = None,
    ) -> Replan | str:
        """The replan a violated SLO asks for on ``service`` (whose worst replica runs on
        ``node``): ``kind`` scale or migrate, or None to choose; a string says why none."""
        try:
            _, spec, plan = self.deployment(app)
        except NotFound:
            return f"{app.name} has no deployment to scale or migrate (PUT .../deployment)"
        if service not in {s.name for s in spec.services}:
            return f"the deployment of {app.name} has no requirements for {service}"
        waiting = self._waiting(app, service, now, spec.cooldown_s)
        if waiting:
            return waiting
        nodes = self.nodes()
        # every app's allocation counts on a shared node; a node's own report wins
        reported = {**self.load(), **(reported or {})}
        current = sum(1 for p in plan.placements if p.service == service)
        cap = spec.max_replicas.get(service)
        try:
            if kind is ActionKind.MIGRATE:
                if node is None:
                    return "the violation names no node to migrate from"
                return migrate(nodes, spec.services, plan, service, away_from=node)
            if kind is ActionKind.SCALE:
                if cap is not None and current >= cap:
                    return f"{service} is at its {cap} replicas already"
                return scale(nodes, spec.services, plan, service, current + 1)
            return choose_tactic(
                nodes,
                spec.services,
                plan,
                service,
                node,
                reported=reported,
                saturation=spec.saturation,
                max_replicas=cap,
            )
        except InventoryError as error:
            return f"cannot replan {service}: {error}"

    def _waiting(self, app: App, service: str, now: float, cooldown_s: float) -> str | None:
        """Why no tactic may be decided for ``service`` now: one on its way, or cooling down."""
        for version in self.server.store.deployments(app, limit=20):
            if version.action_id is None or version.status == "failed":
                continue
            action = self.server.store.action(app, version.action_id)
            if action.service != service:
                continue
            if version.status == "pending":
                return f"a {action.kind} of {service} is on its way (action {action.id})"
            if now - action.ts < cooldown_s:
                left = cooldown_s - (now - action.ts)
                return f"{service} cools down after its last {action.kind} ({left:.0f} s left)"
        return None

    def propose(self, app: App, replan: Replan, action: StoredAction) -> bool:
        """Store the replanned deployment as pending on ``action``, and carry it out through
        Kubernetes when that is the app's executor (then True: the action is not for the
        service's effector, and is marked delivered so that no reply carries it)."""
        _, spec, _ = self.deployment(app)
        document = spec.model_dump(mode="json")
        if replan.kind == "scale":
            document["services"] = [
                s.model_dump(mode="json")
                for s in _with_replicas(spec.services, replan.service, replan.plan)
            ]
        self.server.store.add_deployment(
            app,
            document,
            replan.plan.model_dump(mode="json"),
            status="pending",
            reason=replan.reason,
            action_id=action.id,
        )
        if spec.executor != "kubernetes":
            return False
        self.server.store.mark_delivered(app, action.id)
        threading.Thread(
            target=self._apply, args=(app, action), name="harmonia-kube-apply", daemon=True
        ).start()
        return True

    def settle(self, app: App, action: StoredAction) -> None:
        """An infrastructure action was applied or failed: so is its deployment version."""
        if action.status in ("applied", "failed"):
            self.server.store.settle_deployment(app, action.id, action.status)

    def _apply(self, app: App, action: StoredAction) -> None:
        """Apply the pending version to the app's domain target; the action's result is the
        outcome (no cluster answering fails it, naming the target)."""
        from harmonia.orchestration.kubernetes import (
            KubernetesError,
            KubeTarget,
            RenderOptions,
            apply_manifests,
            render_plan,
        )
        from harmonia.server.schemas import ResultIn

        status, detail = "failed", ""
        try:
            pending = next(
                d for d in self.server.store.deployments(app) if d.action_id == action.id
            )
            spec = DeploymentSpec.model_validate(pending.document)
            domain = self.server.store.domain(app.domain)
            namespace = domain.namespace or "default"
            options = RenderOptions(namespace=namespace, app=app.name)
            rendered = render_plan(_plan(pending), spec.services, self.nodes(), options)
            target = KubeTarget(context=domain.kube_context, namespace=namespace)
            applied = apply_manifests(rendered.documents, target, prune=True)
            status, detail = "applied", f"applied {len(applied)} object(s) to {namespace}"
        except (KubernetesError, NotFound, StopIteration) as error:
            detail = f"Kubernetes: {error}"
        except Exception as error:  # never lose the outcome: the action says what happened
            logger.exception("applying %s's deployment failed", app.name)
            detail = f"applying the deployment failed: {error}"
        try:
            self.server.finish_action(
                app, action.id, ResultIn.model_validate({"status": status, "reason": detail})
            )
        except Exception:
            logger.exception("recording the outcome of action %s failed", action.id)

    def load(self) -> dict[str, float]:
        """Each node's CPU utilisation as the deployments in force allocate it."""
        nodes = self.nodes()
        found: dict[str, float] = {}
        for stored in self.server.store.deployments_in_force().values():
            spec = DeploymentSpec.model_validate(stored.document)
            for name, value in utilisation(nodes, spec.services, _plan(stored)).items():
                found[name] = found.get(name, 0.0) + value
        return found


def _plan(stored: StoredDeployment) -> Plan:
    return Plan.model_validate(stored.plan)


def _with_replicas(
    services: Sequence[ServiceRequirement], name: str, plan: Plan
) -> list[ServiceRequirement]:
    count = sum(1 for p in plan.placements if p.service == name) + sum(
        1 for u in plan.unplaced if u.service == name
    )
    return [s.model_copy(update={"replicas": count}) if s.name == name else s for s in services]


def deployment_view(stored: StoredDeployment) -> dict[str, Any]:
    return {
        "version": stored.version,
        "status": stored.status,
        "reason": stored.reason,
        "action_id": stored.action_id,
        "created": stored.created,
        "document": stored.document,
        "plan": stored.plan,
    }
