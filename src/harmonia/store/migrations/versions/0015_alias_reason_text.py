"""An alias move keeps its whole reason: the API takes a reason (and a promotion's note) of up
to 2000 characters, which PostgreSQL refused in ``alias_moves.reason`` (500). The column is
text now, as a promotion's reason is its note with a prefix.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

OLD_LENGTH = 500


def upgrade() -> None:
    with op.batch_alter_table("alias_moves") as batch:
        batch.alter_column("reason", type_=sa.Text(), existing_nullable=False)


def downgrade() -> None:
    op.execute(f"UPDATE alias_moves SET reason = substr(reason, 1, {OLD_LENGTH})")
    with op.batch_alter_table("alias_moves") as batch:
        batch.alter_column("reason", type_=sa.String(OLD_LENGTH), existing_nullable=False)
