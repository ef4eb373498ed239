"""Organisations, their domains (with an optional deployment target), API keys scoped per
domain (stored as hashes) and the audit log; applications belong to a domain.

Existing applications move to the ``default`` domain of the ``default`` organisation, which
this migration creates, so that every application has a domain from here on.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "orgs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("created", sa.Float(), nullable=False),
    )
    op.create_table(
        "domains",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column(
            "org_id", sa.Integer(), sa.ForeignKey("orgs.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("kube_context", sa.String(256), nullable=True),
        sa.Column("namespace", sa.String(63), nullable=True),
        sa.Column("created", sa.Float(), nullable=False),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "domain_id",
            sa.Integer(),
            sa.ForeignKey("domains.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("scope", sa.String(8), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("created", sa.Float(), nullable=False),
        sa.Column("created_by", sa.String(160), nullable=False),
        sa.Column("expires", sa.Float(), nullable=True),
        sa.Column("rotated", sa.Float(), nullable=True),
        sa.Column("revoked", sa.Float(), nullable=True),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("principal", sa.String(160), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("resource", sa.String(256), nullable=False),
        sa.Column("domain", sa.String(64), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("detail", sa.String(2000), nullable=False),
        sa.Index("ix_audit_log_domain_ts", "domain", "ts"),
    )
    # Plain ALTER (no batch copy of ``apps``: recreating it would cascade-delete everything
    # that references it while SQLite's foreign keys are on); both databases accept it.
    op.execute("ALTER TABLE apps ADD COLUMN domain_id INTEGER REFERENCES domains(id)")
    bind = op.get_bind()
    now = time.time()
    org_id = bind.execute(
        sa.text("INSERT INTO orgs (name, created) VALUES ('default', :now) RETURNING id"),
        {"now": now},
    ).scalar_one()
    domain_id = bind.execute(
        sa.text(
            "INSERT INTO domains (name, org_id, created) VALUES ('default', :org, :now) "
            "RETURNING id"
        ),
        {"org": org_id, "now": now},
    ).scalar_one()
    bind.execute(sa.text("UPDATE apps SET domain_id = :domain"), {"domain": domain_id})


def downgrade() -> None:
    op.execute("ALTER TABLE apps DROP COLUMN domain_id")
    op.drop_table("audit_log")
    op.drop_table("api_keys")
    op.drop_table("domains")
    op.drop_table("orgs")
