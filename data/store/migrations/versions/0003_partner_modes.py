"""Silent mode (issue 29): each partner's mode changes with the go-live criteria and the figures judged.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table("partner_modes"):  # an adopted pre-migration store got today's tables
        return
    op.create_table(
        "partner_modes",
        sa.Column("record_id", sa.String(length=36), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("partner", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("criteria", sa.JSON(), nullable=False),
        sa.Column("measured", sa.JSON(), nullable=True),
        sa.Column("override", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("record_id"),
        sa.UniqueConstraint("partner", "seq", name="uq_partner_modes_partner_seq"),
    )
    op.create_index(op.f("ix_partner_modes_partner"), "partner_modes", ["partner"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_partner_modes_partner"), table_name="partner_modes")
    op.drop_table("partner_modes")
