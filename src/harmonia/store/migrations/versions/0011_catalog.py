"""The registry's catalog: models and datasets per domain, their versions (the bytes' location,
size and sha256, metadata, lineage), tags, aliases and every move of them, approvals of
promotions, grants of read access to other domains, and the energy spent on each version.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def _fk(table: str, ondelete: str = "CASCADE") -> sa.ForeignKey:
    return sa.ForeignKey(f"{table}.id", ondelete=ondelete)


def upgrade() -> None:
    op.create_table(
        "artifacts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("domain_id", sa.Integer(), _fk("domains"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("next_version", sa.Integer(), nullable=False),
        sa.Column("created", sa.Float(), nullable=False),
        sa.Column("created_by", sa.String(160), nullable=False),
        sa.UniqueConstraint("domain_id", "kind", "name", name="uq_artifacts_domain_kind_name"),
        sa.Index("ix_artifacts_name", "name"),
    )
    op.create_table(
        "artifact_versions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("artifact_id", sa.Integer(), _fk("artifacts"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(64), nullable=True),
        sa.Column("location", sa.String(512), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("filename", sa.String(256), nullable=False),
        sa.Column("media_type", sa.String(128), nullable=False),
        sa.Column("created", sa.Float(), nullable=False),
        sa.Column("created_by", sa.String(160), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column(
            "trained_on_id", sa.Integer(), _fk("artifact_versions", "SET NULL"), nullable=True
        ),
        sa.Column(
            "retrained_from_id", sa.Integer(), _fk("artifact_versions", "SET NULL"), nullable=True
        ),
        sa.UniqueConstraint("artifact_id", "version", name="uq_artifact_versions_version"),
        sa.UniqueConstraint("artifact_id", "label", name="uq_artifact_versions_label"),
    )
    op.create_table(
        "artifact_tags",
        sa.Column(
            "version_id", sa.Integer(), _fk("artifact_versions"), primary_key=True, nullable=False
        ),
        sa.Column("tag", sa.String(64), primary_key=True, nullable=False),
        sa.Index("ix_artifact_tags_tag", "tag", "version_id"),
    )
    op.create_table(
        "approvals",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("artifact_id", sa.Integer(), _fk("artifacts"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("from_alias", sa.String(64), nullable=False),
        sa.Column("to_alias", sa.String(64), nullable=False),
        sa.Column("approver", sa.String(160), nullable=False),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("note", sa.String(2000), nullable=False),
        sa.Index("ix_approvals_artifact_ts", "artifact_id", "ts"),
    )
    op.create_table(
        "artifact_aliases",
        sa.Column("artifact_id", sa.Integer(), _fk("artifacts"), primary_key=True, nullable=False),
        sa.Column("alias", sa.String(64), primary_key=True, nullable=False),
        sa.Column("version_id", sa.Integer(), _fk("artifact_versions"), nullable=False),
        sa.Index("ix_artifact_aliases_version", "version_id"),
    )
    op.create_table(
        "alias_moves",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("artifact_id", sa.Integer(), _fk("artifacts"), nullable=False),
        sa.Column("alias", sa.String(64), nullable=False),
        sa.Column("from_version", sa.Integer(), nullable=True),
        sa.Column("to_version", sa.Integer(), nullable=True),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("moved_by", sa.String(160), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("approval_id", sa.Integer(), _fk("approvals", "SET NULL"), nullable=True),
        sa.Index("ix_alias_moves_artifact_ts", "artifact_id", "ts"),
    )
    op.create_table(
        "artifact_grants",
        sa.Column("artifact_id", sa.Integer(), _fk("artifacts"), primary_key=True, nullable=False),
        sa.Column("domain_id", sa.Integer(), _fk("domains"), primary_key=True, nullable=False),
        sa.Column("granted", sa.Float(), nullable=False),
        sa.Column("granted_by", sa.String(160), nullable=False),
        sa.Index("ix_artifact_grants_domain", "domain_id"),
    )
    op.create_table(
        "artifact_energy",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("version_id", sa.Integer(), _fk("artifact_versions"), nullable=False),
        sa.Column("phase", sa.String(16), nullable=False),
        sa.Column("joules", sa.Float(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("recorded_by", sa.String(160), nullable=False),
        sa.Column("detail", sa.String(500), nullable=False),
        sa.Index("ix_artifact_energy_version", "version_id"),
    )


def downgrade() -> None:
    for table in (
        "artifact_energy",
        "artifact_grants",
        "alias_moves",
        "artifact_aliases",
        "approvals",
        "artifact_tags",
        "artifact_versions",
        "artifacts",
    ):
        op.drop_table(table)
