"""Nodes' own energy counters: readings of the joules a whole node spent over an interval,
and the samples of every application on those nodes, which the readings are apportioned to
(`harmonia.core.pipeline.apportion_node_energy`)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import insert, select, tuple_
from sqlalchemy.exc import IntegrityError

from harmonia.core.pipeline import NodeEnergy
from harmonia.store.apps import App
from harmonia.store.base import StoreBase
from harmonia.store.errors import Conflict, NotFound
from harmonia.store.tables import InstanceRow, NodeEnergyRow, NodeRow, ServiceRow, TelemetryRow


class NodeEnergyMixin(StoreBase):
    """Readings of nodes' energy counters, stored and read."""

    def add_node_energy(
        self, app: App, node: str, start: float, end: float, joules: float
    ) -> NodeEnergy:
        """Store what ``node``'s counter says it spent over [start, end). Only an application
        with an instance on the node may report for it, and a reading that overlaps one
        stored for the node is refused: two reporters on one node (two instances reading
        the same counter) would otherwise count its energy twice."""
        with self._tx() as tx:
            node_id = tx.scalar(
                select(NodeRow.id)
                .join(InstanceRow, InstanceRow.node_id == NodeRow.id)
                .join(ServiceRow, InstanceRow.service_id == ServiceRow.id)
                .where(NodeRow.name == node, ServiceRow.app_id == app.id)
                .limit(1)
            )
            if node_id is None:
                raise NotFound(
                    f"no instance of {app.name} runs on node {node!r}; an instance registers "
                    "its node with POST /apps/{app}/services/{service}/instances"
                )
            clash = tx.execute(
                select(NodeEnergyRow.start, NodeEnergyRow.end)
                .where(
                    NodeEnergyRow.node_id == node_id,
                    NodeEnergyRow.start < end,
                    NodeEnergyRow.end > start,
                )
                .limit(1)
            ).first()
            if clash is not None:
                raise Conflict(
                    f"node {node!r} has a reading for [{clash.start}, {clash.end}) already, "
                    f"which [{start}, {end}) overlaps: one reporter per node, readings end "
                    "to end"
                )
            try:
                tx.execute(
                    insert(NodeEnergyRow).values(
                        node_id=node_id, start=start, end=end, joules=joules, received=self.clock()
                    )
                )
            except IntegrityError:  # another reporter's reading, stored meanwhile
                raise Conflict(f"node {node!r} has a reading from {start} already") from None
        return NodeEnergy(node, start, end, joules)

    def node_energy(self, nodes: Collection[str], start: float, end: float) -> list[NodeEnergy]:
        """The readings of ``nodes`` that overlap [start, end), oldest first."""
        if not nodes:
            return []
        query = (
            select(NodeRow.name, NodeEnergyRow.start, NodeEnergyRow.end, NodeEnergyRow.joules)
            .join(NodeRow, NodeEnergyRow.node_id == NodeRow.id)
            .where(NodeRow.name.in_(nodes), NodeEnergyRow.start < end, NodeEnergyRow.end > start)
            .order_by(NodeEnergyRow.start)
        )
        with self.engine.connect() as connection:
            return [NodeEnergy(*row) for row in connection.execute(query)]

    def node_samples(
        self, app: App, nodes: Collection[str], start: float, end: float, *, latest: int
    ) -> list[dict[str, Any]]:
        """The samples in [start, end) of the other applications' instances on ``nodes``
        (``node``, ``ts``, ``latency_ms``, ``metrics``; the latest ``latest``): what shares a
        node's energy with ``app``'s samples. An instance counts on the node it registered
        last."""
        if not nodes:
            return []
        placed = (
            select(
                ServiceRow.app_id, ServiceRow.name.label("service"), InstanceRow.name, NodeRow.name
            )
            .join(InstanceRow, InstanceRow.service_id == ServiceRow.id)
            .join(NodeRow, InstanceRow.node_id == NodeRow.id)
            .where(NodeRow.name.in_(nodes), ServiceRow.app_id != app.id)
        )
        with self.engine.connect() as connection:
            node_of = {(a, s, i): n for a, s, i, n in connection.execute(placed)}
            if not node_of:
                return []
            query = (
                select(
                    TelemetryRow.app_id,
                    TelemetryRow.service,
                    TelemetryRow.instance,
                    TelemetryRow.ts,
                    TelemetryRow.latency_ms,
                    TelemetryRow.metrics,
                )
                .where(
                    TelemetryRow.app_id.in_({a for a, _, _ in node_of}),
                    tuple_(TelemetryRow.app_id, TelemetryRow.service, TelemetryRow.instance).in_(
                        list(node_of)
                    ),
                    TelemetryRow.ts >= start,
                    TelemetryRow.ts < end,
                )
                .order_by(TelemetryRow.ts.desc())
                .limit(latest)
            )
            return [
                {"node": node, "ts": r.ts, "latency_ms": r.latency_ms, "metrics": r.metrics}
                for r in connection.execute(query)
                if (node := node_of.get((r.app_id, r.service, r.instance))) is not None
            ]
