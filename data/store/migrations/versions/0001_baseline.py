"""Baseline: the eight tables as releases before migrations created them.

Revision ID: 0001
Revises:
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_feedback",
        sa.Column("record_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("partner", sa.String(length=64), nullable=False),
        sa.Column("participant_key", sa.String(length=64), nullable=False),
        sa.Column("alert_id", sa.String(length=36), nullable=False),
        sa.Column("action", sa.String(length=24), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("record_id"),
    )
    op.create_index(op.f("ix_alert_feedback_alert_id"), "alert_feedback", ["alert_id"], unique=False)
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("partner", sa.String(length=64), nullable=False),
        sa.Column("secret_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key_id"),
    )
    op.create_index(op.f("ix_api_keys_partner"), "api_keys", ["partner"], unique=False)
    op.create_table(
        "escalation_changes",
        sa.Column("record_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("partner", sa.String(length=64), nullable=False),
        sa.Column("participant_key", sa.String(length=64), nullable=False),
        sa.Column("alert_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("record_id"),
    )
    op.create_index(
        "ix_escalation_changes_partner_participant", "escalation_changes", ["partner", "participant_key"], unique=False
    )
    op.create_table(
        "outcomes",
        sa.Column("record_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("partner", sa.String(length=64), nullable=False),
        sa.Column("participant_key", sa.String(length=64), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("record_id"),
    )
    op.create_index("ix_outcomes_partner_participant", "outcomes", ["partner", "participant_key"], unique=False)
    op.create_table(
        "predictions",
        sa.Column("record_id", sa.String(length=36), nullable=False),
        sa.Column("request_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("partner", sa.String(length=64), nullable=False),
        sa.Column("participant_key", sa.String(length=64), nullable=False),
        sa.Column("model_version", sa.String(length=32), nullable=False),
        sa.Column("window_end", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("risk", sa.Float(), nullable=True),
        sa.Column("band", sa.String(length=16), nullable=True),
        sa.Column("days_observed", sa.Integer(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("record_id"),
    )
    op.create_index(op.f("ix_predictions_created_at"), "predictions", ["created_at"], unique=False)
    op.create_index("ix_predictions_partner_participant", "predictions", ["partner", "participant_key"], unique=False)
    op.create_index(op.f("ix_predictions_request_id"), "predictions", ["request_id"], unique=False)
    op.create_table(
        "store_settings",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "webhooks",
        sa.Column("partner", sa.String(length=64), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("secret", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("partner"),
    )
    op.create_table(
        "withdrawals",
        sa.Column("partner", sa.String(length=64), nullable=False),
        sa.Column("participant_key", sa.String(length=64), nullable=False),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("predictions_deleted", sa.Integer(), nullable=False),
        sa.Column("outcomes_deleted", sa.Integer(), nullable=False),
        sa.Column("models_trained_before", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("partner", "participant_key"),
    )


def downgrade() -> None:
    op.drop_table("withdrawals")
    op.drop_table("webhooks")
    op.drop_table("store_settings")
    op.drop_index(op.f("ix_predictions_request_id"), table_name="predictions")
    op.drop_index("ix_predictions_partner_participant", table_name="predictions")
    op.drop_index(op.f("ix_predictions_created_at"), table_name="predictions")
    op.drop_table("predictions")
    op.drop_index("ix_outcomes_partner_participant", table_name="outcomes")
    op.drop_table("outcomes")
    op.drop_index("ix_escalation_changes_partner_participant", table_name="escalation_changes")
    op.drop_table("escalation_changes")
    op.drop_index(op.f("ix_api_keys_partner"), table_name="api_keys")
    op.drop_table("api_keys")
    op.drop_index(op.f("ix_alert_feedback_alert_id"), table_name="alert_feedback")
    op.drop_table("alert_feedback")
