"""The node inventory (each node's capacities, power model and carbon intensity) and each
application's deployments: the services' requirements and the placement plan, version by
version, with the action that proposed a version and whether it was carried out.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("nodes") as batch:
        batch.add_column(sa.Column("spec", sa.JSON(), nullable=True))
    op.create_table(
        "deployments",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "app_id", sa.Integer(), sa.ForeignKey("apps.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("plan", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column(
            "action_id",
            sa.Integer(),
            sa.ForeignKey("actions.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("created", sa.Float(), nullable=False),
        sa.UniqueConstraint("app_id", "version", name="uq_deployments_app_version"),
    )


def downgrade() -> None:
    op.drop_table("deployments")
    with op.batch_alter_table("nodes") as batch:
        batch.drop_column("spec")
