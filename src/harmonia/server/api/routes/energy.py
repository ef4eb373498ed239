"""Energy per stage: where an application's joules and gCO2e go (per stage, service or
instance), as JSON or CSV, and the readings of nodes' own energy counters that, where a node
reports one, stand in for its probes' figures."""

from dataclasses import asdict, replace
from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from harmonia.core.pipeline import MAX_CARBON_G_PER_KWH, EnergyGroup, energy_breakdown
from harmonia.server.api import API
from harmonia.server.api.deps import AppAuth, KnownApp, ServerDep
from harmonia.server.api.routes.apps import PIPELINE_MAX_SAMPLES, PIPELINE_SPAN_S
from harmonia.server.errors import Invalid
from harmonia.server.fields import Name
from harmonia.server.observe import energy_csv, finite_row
from harmonia.server.openapi import errors, text_reply
from harmonia.server.schemas import EnergyOut, NodeEnergyIn, NodeEnergyOut
from harmonia.server.service import Server
from harmonia.store import App

router = APIRouter(prefix=API)
Start = Query(default=None, allow_inf_nan=False)
End = Query(default=None, allow_inf_nan=False)
Span = Query(default=PIPELINE_SPAN_S, gt=0, le=30 * 86400)
#: the default intensity a request may set for nodes with neither a label nor a region
Carbon = Query(default=None, ge=0, le=MAX_CARBON_G_PER_KWH)


@router.get(
    "/apps/{name}/energy",
    response_model=EnergyOut,
    responses=errors(404, 422, 503),
)
async def energy(
    app: KnownApp,
    server: ServerDep,
    by: EnergyGroup = "stage",
    start: float | None = Start,
    end: float | None = End,
    span: float = Span,
    carbon_g_per_kwh: float | None = Carbon,
) -> dict[str, Any]:
    """Where the energy goes over [start, end) (by default the last ``span`` seconds): joules
    per request for each stage, service or instance, its share of the pipeline's, the
    gCO2e they stand for at each node's intensity (its label ``carbon_g_per_kwh``, else its
    ``region``'s in the server's table, else ``carbon_g_per_kwh``, else the server's
    default), and how each group's joules were obtained (``methods``)."""
    return await run_in_threadpool(energy_view, server, app, by, start, end, span, carbon_g_per_kwh)


@router.get(
    "/apps/{name}/energy.csv",
    response_class=Response,
    responses={
        200: text_reply("text/csv", "One row per stage, service or instance (``by``)"),
        **errors(404, 422, 503),
    },
)
async def energy_export(
    app: KnownApp,
    server: ServerDep,
    by: EnergyGroup = "stage",
    start: float | None = Start,
    end: float | None = End,
    span: float = Span,
    carbon_g_per_kwh: float | None = Carbon,
) -> Response:
    """The same breakdown as ``/energy``, one row per group, for a spreadsheet."""
    view = await run_in_threadpool(energy_view, server, app, by, start, end, span, carbon_g_per_kwh)
    return Response(
        energy_csv(view),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{app.name}-energy-by-{by}.csv"'},
    )


@router.post(
    "/apps/{name}/nodes/{node}/energy",
    status_code=201,
    response_model=NodeEnergyOut,
    responses=errors(400, 401, 403, 404, 409, 413, 422, 503),
)
def report_node_energy(
    app: AppAuth, node: Name, body: NodeEnergyIn, server: ServerDep
) -> dict[str, Any]:
    """What ``node``'s own energy counter says the whole node spent over [start, end). The
    node must run an instance of the app; readings of a node must not overlap (409): one
    instance per node reports, each reading starting where the last ended."""
    latest = server.clock() + server.guards.max_clock_skew_s
    if body.end > latest:
        skew = server.guards.max_clock_skew_s
        raise Invalid(
            [
                {
                    "field": "end",
                    "reason": f"is ahead of the server's clock by more than {skew:.0f} s",
                }
            ]
        )
    return asdict(server.store.add_node_energy(app, node, body.start, body.end, body.joules))


def energy_view(
    server: Server,
    app: App,
    by: EnergyGroup,
    start: float | None,
    end: float | None,
    span: float,
    carbon_g_per_kwh: float | None,
) -> dict[str, Any]:
    """The energy breakdown (`harmonia.core.pipeline.energy_breakdown`) over the stored
    samples, each placed on the node its instance registered last, with the readings of
    those nodes' counters and the other applications' samples that share them."""
    end = server.clock() if end is None else end
    start = end - span if start is None else start
    carbon = server.carbon
    if carbon_g_per_kwh is not None:
        carbon = replace(carbon, default_g_per_kwh=carbon_g_per_kwh)
    instances = server.store.instances(app)
    node_of = {(i.service, i.name): i.node for i in instances}
    intensity = {i.node: carbon.of_node(i.labels) for i in instances if i.node is not None}
    rows = list(server.store.telemetry(app, start, end, latest=PIPELINE_MAX_SAMPLES))
    for row in rows:
        row["node"] = node_of.get((row["service"], row["instance"]))
    readings = server.store.node_energy(intensity, start, end)
    metered = {reading.node for reading in readings}
    found = energy_breakdown(
        app.structure,
        rows,
        by,
        carbon_g_per_kwh=carbon.default_g_per_kwh,
        carbon_of_node={node: g for node, (g, _) in intensity.items()},
        node_energy=readings,
        other_samples=server.store.node_samples(
            app, metered, start, end, latest=PIPELINE_MAX_SAMPLES
        ),
        start=start,
        end=end,
    )
    return {
        "start": start,
        "end": end,
        "samples": len(rows),
        "by": by,
        "requests": found.requests,
        "total_j": found.total_j,
        "total_g_co2e": found.total_g_co2e,
        "groups": {k: finite_row(v) for k, v in found.groups.items()},
        "methods": found.methods,
        "nodes": {
            node: {
                "carbon_g_per_kwh": g,
                "carbon_source": source,
                "counter_j": found.nodes.get(node, {}).get("counter_j"),
                "apportioned_j": found.nodes.get(node, {}).get("apportioned_j"),
            }
            for node, (g, source) in intensity.items()
        },
    }
