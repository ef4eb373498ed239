"""The store: applications, policies, telemetry and actions in SQLite or PostgreSQL."""

from harmonia.store.actions import StoredAction
from harmonia.store.apps import App, Instance, hash_token, same_secret
from harmonia.store.base import sqlite_url
from harmonia.store.contracts import StoredContract
from harmonia.store.errors import Conflict, NotFound, StoreError
from harmonia.store.harmonica import HarmonicaStore
from harmonia.store.policies import StoredPolicy
from harmonia.store.store import Store

__all__ = [
    "App",
    "Conflict",
    "HarmonicaStore",
    "Instance",
    "NotFound",
    "Store",
    "StoreError",
    "StoredAction",
    "StoredContract",
    "StoredPolicy",
    "hash_token",
    "same_secret",
    "sqlite_url",
]
