"""Partners opt in to their traffic training new models (issue 30).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table("retraining_consent"):  # an adopted pre-migration store got today's tables
        return
    op.create_table(
        "retraining_consent",
        sa.Column("partner", sa.String(length=64), nullable=False),
        sa.Column("min_days", sa.Integer(), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("partner"),
    )


def downgrade() -> None:
    op.drop_table("retraining_consent")
