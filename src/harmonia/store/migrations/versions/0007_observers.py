"""Observers per application (versioned) and what their runs found.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _app_id() -> sa.Column[int]:
    return sa.Column(
        "app_id", sa.Integer(), sa.ForeignKey("apps.id", ondelete="CASCADE"), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "observer_configs",
        sa.Column("id", sa.Integer(), primary_key=True),
        _app_id(),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("created", sa.Float(), nullable=False),
        sa.UniqueConstraint("app_id", "version", name="uq_observer_configs_version"),
    )
    op.create_table(
        "observations",
        sa.Column("id", sa.Integer(), primary_key=True),
        _app_id(),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("observer", sa.String(128), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.Column("flagged_ts", sa.JSON(), nullable=False),
        sa.Column("explanation", sa.String(2000), nullable=False),
        sa.Column("error", sa.String(2000), nullable=True),
    )
    op.create_index("ix_observations_app_ts", "observations", ["app_id", "ts"])


def downgrade() -> None:
    op.drop_table("observations")
    op.drop_table("observer_configs")
