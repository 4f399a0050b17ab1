"""Withdrawn consent: who withdrew, and deleting everything the store holds of them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from earlywarn.data.store import audit
from earlywarn.data.store.base import checkpoint, keys_by_partner, metadata
from earlywarn.data.store.escalations import alert_feedback, escalation_changes
from earlywarn.data.store.outcomes import outcomes
from earlywarn.data.store.predictions import predictions
from earlywarn.data.store.webhooks import webhook_deliveries

withdrawals = sa.Table(
    "withdrawals",
    metadata,
    sa.Column("partner", sa.String(64), primary_key=True),
    sa.Column("participant_key", sa.String(64), primary_key=True),
    sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("predictions_deleted", sa.Integer, nullable=False),
    sa.Column("outcomes_deleted", sa.Integer, nullable=False),
    # Registered model versions trained before the withdrawal, whose training data may have included this person.
    sa.Column("models_trained_before", sa.JSON, nullable=False),
)


def withdrawn(engine: Engine, pairs: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which (partner, participant key) pairs have withdrawn consent."""
    out: set[tuple[str, str]] = set()
    with engine.connect() as conn:
        for partner, keys in keys_by_partner(pairs).items():
            c = withdrawals.c
            q = sa.select(c.participant_key).where(c.partner == partner, c.participant_key.in_(sorted(keys)))
            out |= {(partner, k) for (k,) in conn.execute(q)}
    return out


def held_rows(engine: Engine, partner: str, participant_key: str) -> int:
    """How many rows the store holds for this participant (predictions, outcomes, escalations, feedback, deliveries)."""
    with engine.connect() as conn:
        return sum(
            int(conn.execute(sa.select(sa.func.count()).select_from(t).where(
                t.c.partner == partner, t.c.participant_key == participant_key)).scalar() or 0)
            for t in (predictions, outcomes, escalation_changes, alert_feedback, webhook_deliveries)
        )  # fmt: skip


def forget(
    engine: Engine, partner: str, participant_key: str, models_trained_before: list[str], actor: str | None = None
) -> tuple[int, int]:
    """Delete a participant's predictions (with their inputs) and outcomes, and record the withdrawal; returns
    (predictions deleted, outcomes deleted)."""
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        n_pred = conn.execute(
            sa.delete(predictions).where(predictions.c.partner == partner, predictions.c.participant_key == participant_key)
        ).rowcount
        n_out = conn.execute(
            sa.delete(outcomes).where(outcomes.c.partner == partner, outcomes.c.participant_key == participant_key)
        ).rowcount
        for table in (escalation_changes, alert_feedback, webhook_deliveries):
            conn.execute(sa.delete(table).where(table.c.partner == partner, table.c.participant_key == participant_key))
        conn.execute(
            sa.delete(withdrawals).where(withdrawals.c.partner == partner, withdrawals.c.participant_key == participant_key)
        )
        conn.execute(
            sa.insert(withdrawals).values(
                partner=partner,
                participant_key=participant_key,
                withdrawn_at=now,
                predictions_deleted=int(n_pred or 0),
                outcomes_deleted=int(n_out or 0),
                models_trained_before=models_trained_before,
            )
        )
    checkpoint(engine)
    counts = {"predictions": int(n_pred or 0), "outcomes": int(n_out or 0), "models_trained_before": models_trained_before}
    audit.record(engine, actor or audit.cli_actor(), "participant.forget", partner, counts)  # never the person's key
    return int(n_pred or 0), int(n_out or 0)


def read_withdrawals(engine: Engine) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.DataFrame(conn.execute(sa.select(withdrawals)).mappings().all())
