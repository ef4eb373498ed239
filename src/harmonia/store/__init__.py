"""The store: applications, policies, telemetry and actions in SQLite or PostgreSQL."""

from harmonia.store.actions import StoredAction
from harmonia.store.apps import App, Instance, hash_token, same_secret
from harmonia.store.audit import AuditEntry
from harmonia.store.base import sqlite_url
from harmonia.store.contracts import StoredContract, StoredSLOState
from harmonia.store.domains import DEFAULT_DOMAIN, SCOPES, ApiKey, Domain, Org, scope_allows
from harmonia.store.errors import Conflict, NotFound, StoreError
from harmonia.store.harmonica import HarmonicaStore
from harmonia.store.infrastructure import StoredDeployment
from harmonia.store.policies import StoredPolicy
from harmonia.store.store import Store

__all__ = [
    "DEFAULT_DOMAIN",
    "SCOPES",
    "ApiKey",
    "App",
    "AuditEntry",
    "Conflict",
    "Domain",
    "HarmonicaStore",
    "Instance",
    "NotFound",
    "Org",
    "Store",
    "StoreError",
    "StoredAction",
    "StoredContract",
    "StoredDeployment",
    "StoredPolicy",
    "StoredSLOState",
    "hash_token",
    "same_secret",
    "scope_allows",
    "sqlite_url",
]
