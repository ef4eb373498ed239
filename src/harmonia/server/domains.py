"""The service layer of organisations, domains and their keys: who may do what (by scope),
and an audit entry for every write, done or not.

Organisations and domains are created with the admin token only; a domain's ``admin`` key
manages that domain's keys and reads its audit log; ``read`` lets a key see the domain and
check its target. Whoever is refused is recorded (outcome ``denied``), as is a write the store
refused (``failed``); a write that is done records itself with it (outcome ``ok``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from harmonia.server.domain_target import TargetCheck, check_target
from harmonia.server.errors import Forbidden, Invalid
from harmonia.server.principals import KeyCache, Principal, resolve
from harmonia.store import ApiKey, AuditEntry, Conflict, Domain, NotFound, Org, Store, StoreError


class Domains:
    """Organisations, domains, keys and the audit log, as the routes and the CLI reach
    them; ``keys`` is the cache every request's key goes through."""

    def __init__(self, store: Store, admin_token: str) -> None:
        self.store = store
        self.admin_token = admin_token
        self.keys = KeyCache(store)

    def principal(self, token: str | None) -> Principal:
        """The caller a bearer ``token`` is: the admin, or a domain's key."""
        return resolve(token, self.admin_token, self.keys)

    # -- authorisation and audit ------------------------------------------------------------
    def require(
        self, caller: Principal, domain: str, scope: str, action: str, resource: str
    ) -> None:
        """`Forbidden` (and a ``denied`` entry: for writes; reads are refused by
        `Principal.require` alone) unless ``caller`` holds ``scope`` on ``domain``."""
        try:
            caller.require(domain, scope)
        except Forbidden as error:
            self.store.audit(
                caller.name, action, resource, domain=domain, outcome="denied", detail=str(error)
            )
            raise

    def require_admin(self, caller: Principal, action: str, resource: str) -> None:
        """`Forbidden` (and a ``denied`` entry) unless ``caller`` is the super-user."""
        if not caller.admin:
            reason = f"this needs the admin token; {caller.name} is not it"
            self.store.audit(
                caller.name, action, resource, domain=None, outcome="denied", detail=reason
            )
            raise Forbidden(reason)

    @contextmanager
    def recording_failure(
        self, caller: Principal, action: str, resource: str, domain: str | None, field: str
    ) -> Iterator[None]:
        """Around a store write: record it if the store refuses it (outcome ``failed``) and
        re-raise; `Conflict` and `NotFound` as they are, any other `StoreError` as an
        `Invalid` that names ``field``."""
        try:
            yield
        except StoreError as error:
            self.store.audit(
                caller.name, action, resource, domain=domain, outcome="failed", detail=str(error)
            )
            if isinstance(error, Conflict | NotFound):
                raise
            raise Invalid([{"field": field, "reason": str(error)}]) from None

    # -- organisations and domains ----------------------------------------------------------
    def create_org(self, caller: Principal, name: str) -> Org:
        resource = f"org:{name}"
        self.require_admin(caller, "org.create", resource)
        with self.recording_failure(caller, "org.create", resource, None, "name"):
            return self.store.create_org(name, by=caller.name)

    def orgs(self, caller: Principal) -> list[Org]:
        """Every organisation for the admin; for a key, the one owning its domain."""
        orgs = self.store.orgs()
        if caller.admin:
            return orgs
        mine = {d.org for d in self.domains(caller)}
        return [o for o in orgs if o.name in mine]

    def create_domain(
        self,
        caller: Principal,
        name: str,
        org: str,
        *,
        kube_context: str | None,
        namespace: str | None,
    ) -> Domain:
        resource = f"domain:{name}"
        self.require_admin(caller, "domain.create", resource)
        with self.recording_failure(caller, "domain.create", resource, name, "name"):
            return self.store.create_domain(
                name, org, kube_context=kube_context, namespace=namespace, by=caller.name
            )

    def domains(self, caller: Principal) -> list[Domain]:
        """Every domain for the admin; for a key, the domain it holds a scope on."""
        return [d for d in self.store.domains() if caller.admin or d.name in caller.scopes]

    def domain(self, caller: Principal, name: str) -> Domain:
        """Domain ``name``, if ``caller`` may read it (a key of another domain is refused
        whether or not the domain exists, so that names do not leak)."""
        caller.require(name, "read")  # a read: refused, not audited
        return self.store.domain(name)

    def check(self, caller: Principal, name: str) -> tuple[Domain, TargetCheck]:
        """The domain and whether its deployment target answers (blocking: seconds at
        most)."""
        domain = self.domain(caller, name)
        return domain, check_target(domain)

    # -- keys -------------------------------------------------------------------------------
    def create_key(
        self,
        caller: Principal,
        domain: str,
        scope: str,
        *,
        name: str = "",
        expires_in_s: float | None = None,
    ) -> tuple[ApiKey, str]:
        """A key of ``domain`` (its admins only); returns it and its token, shown once."""
        resource = f"domain:{domain}/keys"
        self.require(caller, domain, "admin", "key.create", resource)
        expires = None if expires_in_s is None else self.store.clock() + expires_in_s
        with self.recording_failure(caller, "key.create", resource, domain, "scope"):
            return self.store.create_key(domain, scope, name=name, expires=expires, by=caller.name)

    def keys_of(self, caller: Principal, domain: str) -> list[ApiKey]:
        caller.require(domain, "admin")
        return self.store.keys(domain)

    def rotate_key(self, caller: Principal, domain: str, key_id: str) -> tuple[ApiKey, str]:
        """A new secret for the key; its old token stops working here at once."""
        resource = f"key:{key_id}"
        self._key_of(caller, domain, key_id, "key.rotate")
        with self.recording_failure(caller, "key.rotate", resource, domain, "id"):
            rotated = self.store.rotate_key(key_id, by=caller.name)
        self.keys.forget(key_id)
        return rotated

    def revoke_key(self, caller: Principal, domain: str, key_id: str) -> ApiKey:
        """Revoke the key for good; it stops working here at once."""
        resource = f"key:{key_id}"
        self._key_of(caller, domain, key_id, "key.revoke")
        with self.recording_failure(caller, "key.revoke", resource, domain, "id"):
            revoked = self.store.revoke_key(key_id, by=caller.name)
        self.keys.forget(key_id)
        return revoked

    def _key_of(self, caller: Principal, domain: str, key_id: str, action: str) -> ApiKey:
        """Key ``key_id`` of ``domain``, for one of its admins (`NotFound` if the key is
        another domain's: a domain's admin cannot reach other domains' keys by id)."""
        self.require(caller, domain, "admin", action, f"key:{key_id}")
        try:
            key = self.store.key(key_id)
        except NotFound:
            key = None
        if key is None or key.domain != domain:
            raise NotFound(f"domain {domain!r} has no key {key_id[:32]!r}")
        return key

    # -- audit ------------------------------------------------------------------------------
    def audit_log(self, caller: Principal, domain: str | None, limit: int) -> list[AuditEntry]:
        """The domain's entries, newest first, for its admins; every entry for the admin."""
        if domain is None and not caller.admin:
            raise Forbidden(
                f"the whole log needs the admin token; {caller.name} may read its domain's: "
                "name it with ?domain="
            )
        if domain is not None:
            caller.require(domain, "admin")
        return self.store.audit_log(domain=domain, limit=limit)
