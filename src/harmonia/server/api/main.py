"""Every resource's router, in the order the app matches them. `create_app` includes each
one directly (not through one router over them all: one level less to walk per request)."""

from fastapi import APIRouter

from harmonia.server.api.routes import (
    actions,
    apps,
    contracts,
    dashboard,
    health,
    observe,
    observers,
    policies,
    runs,
    telemetry,
    versions,
)

ROUTERS: tuple[APIRouter, ...] = tuple(
    resource.router
    for resource in (
        dashboard,
        runs,
        health,
        apps,
        policies,
        contracts,
        observers,
        telemetry,
        actions,
        observe,
        versions,
    )
)
