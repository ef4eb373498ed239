"""Principals and scopes: what each scope allows, how a key token is read, and the cache of
verified keys (its invalidation on revoke and rotate, its expiry)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harmonia.server.errors import Forbidden, Unauthorized
from harmonia.server.principals import ADMIN, KeyCache, Principal, app_principal, resolve
from harmonia.store import Store, scope_allows, sqlite_url
from harmonia.store.domains import key_secret_hash, parse_key


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Iterator[Store]:
    store = Store(sqlite_url(tmp_path), clock=clock)
    store.create_org("acme", by="admin")
    store.create_domain("vendor", "acme", by="admin")
    yield store
    store.close()


@pytest.mark.parametrize(
    ("held", "needed", "allowed"),
    [
        ("read", "read", True),
        ("read", "write", False),
        ("write", "read", True),
        ("write", "admin", False),
        ("admin", "write", True),
    ],
)
def test_a_scope_allows_the_weaker_ones(held: str, needed: str, allowed: bool) -> None:
    assert scope_allows(held, needed) is allowed


def test_a_refusal_names_the_scope_needed() -> None:
    reader = Principal("key:abc", scopes={"vendor": "read"})
    assert reader.allows("vendor", "read") and not reader.allows("other", "read")
    with pytest.raises(Forbidden, match=r"needs scope 'write' on domain 'vendor'.*'read'"):
        reader.require("vendor", "write")
    with pytest.raises(Forbidden, match="holds no scope"):
        reader.require("other", "read")
    assert reader.domains_with("read") == {"vendor"} and reader.domains_with("write") == set()
    assert ADMIN.domains_with("admin") is None
    ADMIN.require("anything", "admin")
    with pytest.raises(Forbidden):
        app_principal("traffic").require("default", "read")


def test_only_key_shaped_tokens_are_read_as_keys() -> None:
    assert parse_key("hk_0a1b_sec_ret") == ("0a1b", "sec_ret")
    for token in ("admin-secret", "hk__x", "hk_id_", "xx_a_b", "hk_a-b_c", "hk_" + "a" * 33 + "_s"):
        assert parse_key(token) is None, token


def test_the_stored_key_is_a_hash_not_the_secret(store: Store) -> None:
    key, token = store.create_key("vendor", "read", by="admin")
    _, key_id, secret = token.split("_", 2)
    assert key_id == key.id and len(secret) >= 40
    with store.engine.connect() as connection:
        stored = connection.exec_driver_sql("SELECT secret_hash FROM api_keys").scalar_one()
    assert stored == key_secret_hash(secret) and secret not in stored and token not in stored


def test_rotating_and_revoking_drop_the_key_from_the_cache(store: Store) -> None:
    cache = KeyCache(store, ttl_s=3600)
    key, token = store.create_key("vendor", "write", by="admin")
    assert cache.key(token) == key
    _, new_token = store.rotate_key(key.id, by="admin")
    cache.forget(key.id)
    assert cache.key(token) is None and cache.key(new_token) is not None
    store.revoke_key(key.id, by="admin")
    cache.forget(key.id)
    assert cache.key(new_token) is None


def test_a_cached_key_is_asked_again_after_its_ttl(store: Store, clock: Clock) -> None:
    """Another replica revoked it: the cache trusts it ``ttl_s`` at most."""
    monotonic = Clock()
    cache = KeyCache(store, clock=monotonic, ttl_s=10)
    key, token = store.create_key("vendor", "read", by="admin")
    assert cache.key(token) is not None
    store.revoke_key(key.id, by="admin")  # not through this cache
    assert cache.key(token) is not None
    monotonic.now += 11
    assert cache.key(token) is None


def test_an_expired_key_stops_working_even_cached(store: Store, clock: Clock) -> None:
    cache = KeyCache(store, ttl_s=3600)
    _, token = store.create_key("vendor", "read", expires=clock.now + 60, by="admin")
    assert cache.key(token) is not None
    clock.now += 61
    assert cache.key(token) is None


def test_resolve_tells_the_admin_a_key_and_nothing(store: Store) -> None:
    cache = KeyCache(store)
    key, token = store.create_key("vendor", "admin", by="admin")
    assert resolve("root", "root", cache) is ADMIN
    assert resolve(token, "root", cache) == Principal(f"key:{key.id}", scopes={"vendor": "admin"})
    with pytest.raises(Unauthorized, match="missing token"):
        resolve(None, "root", cache)
    with pytest.raises(Unauthorized, match="neither the admin token nor a valid key"):
        resolve(token + "x", "root", cache)
