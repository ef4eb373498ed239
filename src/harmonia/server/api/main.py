"""Every resource's router, in the order the app matches them. `create_app` includes each
one directly (not through one router over them all: one level less to walk per request)."""

from fastapi import APIRouter

from harmonia.server.api.routes import (
    actions,
    apps,
    audit,
    catalog,
    contracts,
    dashboard,
    domains,
    energy,
    health,
    infrastructure,
    keys,
    observe,
    observers,
    policies,
    replicas,
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
        energy,
        policies,
        contracts,
        observers,
        telemetry,
        actions,
        observe,
        versions,
        domains,
        keys,
        audit,
        catalog,
        infrastructure,
        replicas,
    )
)
