"""Who a request's token says the caller is (a `Principal`) and what it may do per domain.

Three kinds of caller: the server's admin token (the super-user: every scope on every
domain), an application's own token (its app only, as before domains), and a domain's API key
(``hk_<id>_<secret>``: one scope, ``read``, ``write`` or ``admin``, on one domain). Routes ask
`Principal.require(domain, scope)`; a refusal names the scope that was needed.

Verified keys are cached (`KeyCache`) so that a key on the telemetry path costs a dictionary
lookup, not a query; revoking or rotating a key here drops it at once, and the cache holds an
entry no longer than ``ttl_s``, which bounds how long another replica (PostgreSQL) keeps
honouring a key revoked elsewhere.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from harmonia.server.errors import Forbidden, Unauthorized
from harmonia.store import ApiKey, Store, same_secret, scope_allows
from harmonia.store.domains import parse_key

#: the longest a verified key is trusted without asking the database again
KEY_CACHE_TTL_S = 10.0
#: the most keys the cache holds (beyond, it starts afresh: a flood of keys cannot grow it)
KEY_CACHE_SIZE = 10_000


@dataclass(frozen=True)
class Principal:
    """A caller: ``name`` is what the audit log records (``admin``, ``app:<name>``,
    ``key:<id>``); ``scopes`` maps each domain it holds a scope on to that scope."""

    name: str
    admin: bool = False
    scopes: Mapping[str, str] = field(default_factory=dict)
    #: the application whose own token this is (None for the admin and for keys)
    app: str | None = None

    def allows(self, domain: str, scope: str) -> bool:
        """Whether the caller holds ``scope`` (or a stronger one) on ``domain``."""
        if self.admin:
            return True
        held = self.scopes.get(domain)
        return held is not None and scope_allows(held, scope)

    def domains_with(self, scope: str) -> frozenset[str] | None:
        """The domains the caller holds ``scope`` (or a stronger one) on; None for the admin,
        who holds every scope on every domain (a query then filters on nothing)."""
        if self.admin:
            return None
        return frozenset(d for d, held in self.scopes.items() if scope_allows(held, scope))

    def require(self, domain: str, scope: str) -> None:
        """`Forbidden`, naming the scope needed, unless the caller `allows` it."""
        if not self.allows(domain, scope):
            held = self.scopes.get(domain)
            has = f"has scope {held!r} on it" if held else "holds no scope on it"
            raise Forbidden(
                f"this needs scope {scope!r} on domain {domain!r} (or the admin token); "
                f"{self.name} {has}"
            )


ADMIN = Principal("admin", admin=True)


def key_principal(key: ApiKey) -> Principal:
    return Principal(f"key:{key.id}", scopes={key.domain: key.scope})


def app_principal(name: str) -> Principal:
    return Principal(f"app:{name}", app=name)


class KeyCache:
    """Verified keys by the sha256 of their token, each trusted for ``ttl_s`` seconds.

    Only valid keys are kept: an unknown token is looked up each time (a key-shaped one; any
    other never reaches the database), so a key created a moment ago works at once.
    """

    def __init__(
        self,
        store: Store,
        clock: Callable[[], float] = time.monotonic,
        ttl_s: float = KEY_CACHE_TTL_S,
    ) -> None:
        self.store = store
        self.clock = clock
        self.ttl_s = ttl_s
        self._keys: dict[str, tuple[ApiKey, float]] = {}
        self._lock = threading.Lock()

    def key(self, token: str) -> ApiKey | None:
        """The valid key that ``token`` is, or None."""
        if parse_key(token) is None:
            return None
        digest = hashlib.sha256(token.encode()).hexdigest()
        cached = self._keys.get(digest)
        if cached is not None:
            known, checked = cached
            if self.clock() - checked < self.ttl_s and known.valid_at(self.store.clock()):
                return known
        key = self.store.verify_key(token)
        with self._lock:
            if key is None:
                self._keys.pop(digest, None)
            else:
                if len(self._keys) >= KEY_CACHE_SIZE:
                    self._keys.clear()
                self._keys[digest] = (key, self.clock())
        return key

    def forget(self, key_id: str) -> None:
        """Drop every cached token of key ``key_id`` (it was revoked or rotated)."""
        with self._lock:
            for digest in [d for d, (k, _) in self._keys.items() if k.id == key_id]:
                del self._keys[digest]


def resolve(token: str | None, admin_token: str, keys: KeyCache) -> Principal:
    """The principal of a request's bearer ``token`` on routes that take the admin token or
    a domain key; `Unauthorized` without a token or with one that is neither (an app's own
    token authenticates on its app's routes only: `harmonia.server.service.Server.authorize`)."""
    if token is None:
        raise Unauthorized("missing token: send Authorization: Bearer <admin token or key>")
    if same_secret(token, admin_token):
        return ADMIN
    key = keys.key(token)
    if key is None:
        raise Unauthorized(
            "this token is neither the admin token nor a valid key (unknown, revoked, "
            "rotated or expired)"
        )
    return key_principal(key)
