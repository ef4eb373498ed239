"""Contracts (versioned, per application) and the SLO violations found when they are checked.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _app_id() -> sa.Column[int]:
    return sa.Column(
        "app_id", sa.Integer(), sa.ForeignKey("apps.id", ondelete="CASCADE"), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "contracts",
        sa.Column("id", sa.Integer(), primary_key=True),
        _app_id(),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("created", sa.Float(), nullable=False),
        sa.UniqueConstraint("app_id", "version", name="uq_contracts_app_version"),
    )
    op.create_table(
        "violations",
        sa.Column("id", sa.Integer(), primary_key=True),
        _app_id(),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("contract_version", sa.Integer(), nullable=False),
        sa.Column("slo", sa.String(128), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("target", sa.String(128), nullable=True),
        sa.Column("condition", sa.String(1000), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("window", sa.String(64), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("checks", sa.JSON(), nullable=False),
        sa.Column("explanation", sa.String(2000), nullable=False),
        sa.Column("attribution", sa.JSON(), nullable=False),
        sa.Column("action_id", sa.Integer(), nullable=True),
    )
    op.create_index("ix_violations_app_ts", "violations", ["app_id", "ts"])


def downgrade() -> None:
    op.drop_table("violations")
    op.drop_table("contracts")
