"""Replicas of the server on PostgreSQL: a lease per live loop with its fencing token
(``leases``), the inbox through which replicas that do not own a loop hand its owner the
telemetry they stored (``loop_inbox``), the replicas seen lately with the apps their
event-stream subscribers watch (``replicas``), and the notifications too large for NOTIFY
(``replica_events``).

A no-op on SQLite, where one process owns every loop.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def _app_id() -> sa.Column[int]:
    return sa.Column(
        "app_id", sa.Integer(), sa.ForeignKey("apps.id", ondelete="CASCADE"), nullable=False
    )


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.create_table(
        "leases",
        _app_id(),
        sa.Column("service", sa.String(128), nullable=False),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("token", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("acquired_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("app_id", "service", name="pk_leases"),
    )
    op.create_table(
        "loop_inbox",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        _app_id(),
        sa.Column("service", sa.String(128), nullable=False),
        sa.Column("created", sa.Float(), nullable=False),
        sa.Column("samples", sa.LargeBinary(), nullable=False),
    )
    op.create_index("ix_loop_inbox_app_service", "loop_inbox", ["app_id", "service", "id"])
    op.create_table(
        "replicas",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("started", sa.Float(), nullable=False),
        sa.Column("seen", sa.Float(), nullable=False),
        sa.Column("subscriptions", sa.JSON(), nullable=False),
    )
    op.create_table(
        "replica_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("created", sa.Float(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_table("replica_events")
    op.drop_table("replicas")
    op.drop_table("loop_inbox")
    op.drop_table("leases")
