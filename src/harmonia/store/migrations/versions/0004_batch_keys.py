"""Idempotency keys of telemetry batches: a batch retried after a lost reply is answered
from here instead of being stored twice.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "batch_keys",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "app_id", sa.Integer(), sa.ForeignKey("apps.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("created", sa.Float(), nullable=False),
        sa.Column("reply", sa.JSON(), nullable=False),
        sa.UniqueConstraint("app_id", "key", name="uq_batch_keys_app_key"),
    )
    op.create_index("ix_batch_keys_created", "batch_keys", ["created"])


def downgrade() -> None:
    op.drop_table("batch_keys")
