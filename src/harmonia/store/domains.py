"""Organisations, their domains (each with an optional Kubernetes target) and the API keys
scoped to a domain.

A key is shown once, as ``hk_<id>_<secret>``: ``id`` is public (it names the key in listings,
the audit log, rotation and revocation), ``secret`` is 256 random bits of which only the
sha256 is stored. A fast hash is enough here, unlike for passwords: a slow hash (bcrypt,
argon2) only slows the guessing of a low-entropy secret, and guessing 2**256 secrets is out of
reach at any speed; sha256 also keeps the check cheap on the telemetry path.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from harmonia.store.apps import NAME, same_secret
from harmonia.store.audit import add_audit
from harmonia.store.base import StoreBase
from harmonia.store.errors import Conflict, NotFound, StoreError
from harmonia.store.tables import ApiKeyRow, DomainRow, OrgRow

#: the scopes a key may hold, weakest first: each allows what the ones before it allow
SCOPES = ("read", "write", "admin")
#: the organisation and domain that applications registered without one belong to
DEFAULT_DOMAIN = "default"
KEY_PREFIX = "hk"


@dataclass(frozen=True)
class Org:
    """An organisation: a vendor, an operator."""

    id: int
    name: str
    created: float


@dataclass(frozen=True)
class Domain:
    """A domain of an organisation, and where its services are deployed (optional)."""

    id: int
    name: str
    org: str
    kube_context: str | None
    namespace: str | None
    created: float


@dataclass(frozen=True)
class ApiKey:
    """An API key as listed: never its secret."""

    id: str
    domain: str
    scope: str
    name: str
    created: float
    created_by: str
    expires: float | None
    rotated: float | None
    revoked: float | None

    def valid_at(self, now: float) -> bool:
        """Whether the key authenticates at ``now``: not revoked and not expired."""
        return self.revoked is None and (self.expires is None or now < self.expires)


def scope_allows(held: str, needed: str) -> bool:
    """Whether scope ``held`` allows what ``needed`` does (``admin`` ⊇ ``write`` ⊇ ``read``)."""
    return SCOPES.index(held) >= SCOPES.index(needed)


def key_secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_key(token: str) -> tuple[str, str] | None:
    """The (id, secret) of a key token ``hk_<id>_<secret>``; None for any other token (an app
    token, the admin token), so those never reach the keys table."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1] or not parts[2]:
        return None
    key_id, secret = parts[1], parts[2]
    if len(key_id) > 32 or not key_id.isalnum():
        return None
    return key_id, secret


def _name(value: str, what: str) -> str:
    if not NAME.match(value):
        raise StoreError(
            f"{what} {value!r}: use 1-64 lowercase letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )
    return value


class DomainsMixin(StoreBase):
    """Organisations, domains and their API keys. Every write takes ``by``, the principal
    that asked, and records itself in the audit log in its own transaction."""

    # -- organisations ----------------------------------------------------------------------
    def create_org(self, name: str, *, by: str) -> Org:
        _name(name, "organisation")
        now = self.clock()
        try:
            with self._tx() as tx:
                org_id = tx.execute(
                    insert(OrgRow).values(name=name, created=now).returning(OrgRow.id)
                ).scalar_one()
                add_audit(tx, now, by, "org.create", f"org:{name}", domain=None)
        except IntegrityError:
            raise Conflict(f"an organisation named {name!r} exists already") from None
        return Org(org_id, name, now)

    def orgs(self) -> list[Org]:
        with self.engine.connect() as connection:
            rows = connection.execute(select(OrgRow).order_by(OrgRow.name))
            return [Org(r.id, r.name, r.created) for r in rows]

    # -- domains ----------------------------------------------------------------------------
    def create_domain(
        self,
        name: str,
        org: str,
        *,
        kube_context: str | None = None,
        namespace: str | None = None,
        by: str,
    ) -> Domain:
        """A domain of organisation ``org`` (which must exist), with its optional target."""
        _name(name, "domain")
        now = self.clock()
        try:
            with self._tx() as tx:
                org_id = tx.scalar(select(OrgRow.id).where(OrgRow.name == org))
                if org_id is None:
                    raise NotFound(f"no organisation named {org!r}")
                tx.execute(
                    insert(DomainRow).values(
                        name=name,
                        org_id=org_id,
                        kube_context=kube_context,
                        namespace=namespace,
                        created=now,
                    )
                )
                add_audit(tx, now, by, "domain.create", f"domain:{name}", domain=name)
        except IntegrityError:
            raise Conflict(f"a domain named {name!r} exists already") from None
        return self.domain(name)

    def domain(self, name: str) -> Domain:
        with self.engine.connect() as connection:
            found = _domains(connection, name=name)
        if not found:
            raise NotFound(f"no domain named {name[:64]!r}")
        return found[0]

    def domains(self, *, org: str | None = None) -> list[Domain]:
        with self.engine.connect() as connection:
            return _domains(connection, org=org)

    # -- keys -------------------------------------------------------------------------------
    def create_key(
        self,
        domain: str,
        scope: str,
        *,
        name: str = "",
        expires: float | None = None,
        by: str,
    ) -> tuple[ApiKey, str]:
        """A new key of ``domain`` with ``scope``; returns it and its token (shown once)."""
        if scope not in SCOPES:
            raise StoreError(f"scope {scope!r}: one of {', '.join(SCOPES)}")
        now = self.clock()
        if expires is not None and expires <= now:
            raise StoreError(f"expires {expires} is not in the future")
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        with self._tx() as tx:
            domain_id = _domain_id(tx, domain)
            tx.execute(
                insert(ApiKeyRow).values(
                    id=key_id,
                    domain_id=domain_id,
                    scope=scope,
                    name=name,
                    secret_hash=key_secret_hash(secret),
                    created=now,
                    created_by=by,
                    expires=expires,
                )
            )
            add_audit(
                tx, now, by, "key.create", f"key:{key_id}", domain=domain, detail=f"scope={scope}"
            )
        return self.key(key_id), f"{KEY_PREFIX}_{key_id}_{secret}"

    def key(self, key_id: str) -> ApiKey:
        with self.engine.connect() as connection:
            found = _keys(connection, key_id=key_id)
        if not found:
            raise NotFound(f"no key {key_id[:32]!r}")
        return found[0]

    def keys(self, domain: str) -> list[ApiKey]:
        """The keys of ``domain``, revoked ones included, oldest first."""
        with self.engine.connect() as connection:
            _domain_id(connection, domain)
            return _keys(connection, domain=domain)

    def rotate_key(self, key_id: str, *, by: str) -> tuple[ApiKey, str]:
        """A new secret for the key (same id, domain and scope); the old one stops working."""
        secret = secrets.token_urlsafe(32)
        now = self.clock()
        with self._tx() as tx:
            key = _live_key(tx, key_id, "rotate")
            tx.execute(
                update(ApiKeyRow)
                .where(ApiKeyRow.id == key_id)
                .values(secret_hash=key_secret_hash(secret), rotated=now)
            )
            add_audit(tx, now, by, "key.rotate", f"key:{key_id}", domain=key.domain)
        return self.key(key_id), f"{KEY_PREFIX}_{key_id}_{secret}"

    def revoke_key(self, key_id: str, *, by: str) -> ApiKey:
        """Revoke the key for good (it stays listed, as revoked)."""
        now = self.clock()
        with self._tx() as tx:
            key = _live_key(tx, key_id, "revoke")
            tx.execute(update(ApiKeyRow).where(ApiKeyRow.id == key_id).values(revoked=now))
            add_audit(tx, now, by, "key.revoke", f"key:{key_id}", domain=key.domain)
        return self.key(key_id)

    def verify_key(self, token: str) -> ApiKey | None:
        """The key that ``token`` is, if it is a valid one now (not revoked, not expired, its
        secret the current one, compared in constant time); else None."""
        parsed = parse_key(token)
        if parsed is None:
            return None
        key_id, secret = parsed
        with self.engine.connect() as connection:
            stored = connection.scalar(select(ApiKeyRow.secret_hash).where(ApiKeyRow.id == key_id))
            if stored is None or not same_secret(key_secret_hash(secret), stored):
                return None
            [key] = _keys(connection, key_id=key_id)
        return key if key.valid_at(self.clock()) else None


def _domain_id(connection: Connection, name: str) -> int:
    domain_id = connection.scalar(select(DomainRow.id).where(DomainRow.name == name))
    if domain_id is None:
        raise NotFound(f"no domain named {name[:64]!r}")
    return int(domain_id)


def _live_key(tx: Connection, key_id: str, verb: str) -> ApiKey:
    found = _keys(tx, key_id=key_id)
    if not found:
        raise NotFound(f"no key {key_id[:32]!r}")
    if found[0].revoked is not None:
        raise Conflict(f"key {key_id!r} is revoked: there is nothing to {verb}")
    return found[0]


def _domains(
    connection: Connection, *, name: str | None = None, org: str | None = None
) -> list[Domain]:
    query = (
        select(DomainRow, OrgRow.name.label("org"))
        .join(OrgRow, DomainRow.org_id == OrgRow.id)
        .order_by(DomainRow.name)
    )
    if name is not None:
        query = query.where(DomainRow.name == name)
    if org is not None:
        query = query.where(OrgRow.name == org)
    return [
        Domain(r.id, r.name, r.org, r.kube_context, r.namespace, r.created)
        for r in connection.execute(query)
    ]


def _keys(
    connection: Connection, *, key_id: str | None = None, domain: str | None = None
) -> list[ApiKey]:
    query = (
        select(ApiKeyRow, DomainRow.name.label("domain"))
        .join(DomainRow, ApiKeyRow.domain_id == DomainRow.id)
        .order_by(ApiKeyRow.created, ApiKeyRow.id)
    )
    if key_id is not None:
        query = query.where(ApiKeyRow.id == key_id)
    if domain is not None:
        query = query.where(DomainRow.name == domain)
    return [
        ApiKey(
            r.id,
            r.domain,
            r.scope,
            r.name,
            r.created,
            r.created_by,
            r.expires,
            r.rotated,
            r.revoked,
        )
        for r in connection.execute(query)
    ]
