"""Readings of nodes' own energy counters (joules over an interval), apportioned to the
services on each node by CPU time.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "node_energy",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "node_id",
            sa.Integer(),
            sa.ForeignKey("nodes.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("start", sa.Float(), nullable=False),
        sa.Column("end", sa.Float(), nullable=False),
        sa.Column("joules", sa.Float(), nullable=False),
        sa.Column("received", sa.Float(), nullable=False),
        sa.UniqueConstraint("node_id", "start", name="uq_node_energy_node_start"),
    )


def downgrade() -> None:
    op.drop_table("node_energy")
