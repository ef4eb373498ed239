"""The store: applications, policies, telemetry and actions in SQLite or PostgreSQL."""

from harmonia.store.store import (
    App,
    Conflict,
    HarmonicaStore,
    Instance,
    NotFound,
    Store,
    StoredAction,
    StoredPolicy,
    StoreError,
    hash_token,
    sqlite_url,
)

__all__ = [
    "App",
    "Conflict",
    "HarmonicaStore",
    "Instance",
    "NotFound",
    "Store",
    "StoreError",
    "StoredAction",
    "StoredPolicy",
    "hash_token",
    "sqlite_url",
]
