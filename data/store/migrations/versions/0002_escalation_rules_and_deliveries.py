"""Escalation rules (issue 28): the risk and snooze end of episode changes, and the durable webhook delivery queue.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _have(table: str) -> set[str]:
    """A store adopted from before migrations was given today's tables and columns already: add only what is missing."""
    inspector = sa.inspect(op.get_bind())
    return {c["name"] for c in inspector.get_columns(table)} if inspector.has_table(table) else set()


def upgrade() -> None:
    have = _have("escalation_changes")
    with op.batch_alter_table("escalation_changes") as batch:
        if "risk" not in have:
            batch.add_column(sa.Column("risk", sa.Float(), nullable=True))
        if "until" not in have:
            batch.add_column(sa.Column("until", sa.Date(), nullable=True))
    if _have("webhook_deliveries"):
        return
    op.create_table(
        "webhook_deliveries",
        sa.Column("record_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("partner", sa.String(length=64), nullable=False),
        sa.Column("participant_key", sa.String(length=64), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("gave_up_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("record_id"),
    )
    op.create_index("ix_webhook_deliveries_pending", "webhook_deliveries", ["delivered_at", "gave_up_at", "due_at"])


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_pending", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    with op.batch_alter_table("escalation_changes") as batch:
        batch.drop_column("until")
        batch.drop_column("risk")
