"""Harmonica's policies and what its compatibility routes record.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "harmonica_policies",
        sa.Column("policy_id", sa.String(128), primary_key=True),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("created", sa.Float(), nullable=False),
    )
    op.create_table(
        "harmonica_records",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("policy_id", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
    )
    op.create_index("ix_harmonica_records_policy", "harmonica_records", ["policy_id", "kind"])


def downgrade() -> None:
    op.drop_table("harmonica_records")
    op.drop_table("harmonica_policies")
