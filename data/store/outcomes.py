"""Reported outcomes: observed events per participant, for the washout, monitoring and retraining."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from earlywarn.data.store.base import as_date, keys_by_partner, metadata

outcomes = sa.Table(
    "outcomes",
    metadata,
    sa.Column("record_id", sa.String(36), primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("partner", sa.String(64), nullable=False),
    sa.Column("participant_key", sa.String(64), nullable=False),
    sa.Column("date", sa.Date, nullable=False),
    sa.Column("event", sa.String(64), nullable=False),
    sa.Index("ix_outcomes_partner_participant", "partner", "participant_key"),
)


def read_outcomes(engine: Engine, partner: str | Iterable[str] | None = None) -> pd.DataFrame:
    q = sa.select(outcomes)
    if partner is not None:
        q = q.where(outcomes.c.partner.in_([partner] if isinstance(partner, str) else list(partner)))
    with engine.connect() as conn:
        return pd.DataFrame(conn.execute(q).mappings().all())


def latest_events(engine: Engine, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], dt.date]:
    """The latest reported event date of each (partner, participant key) that has one."""
    by_partner = keys_by_partner(pairs)
    out: dict[tuple[str, str], dt.date] = {}
    with engine.connect() as conn:
        for partner, keys in by_partner.items():
            q = (
                sa.select(outcomes.c.participant_key, sa.func.max(outcomes.c.date))
                .where(outcomes.c.partner == partner, outcomes.c.participant_key.in_(sorted(keys)))
                .group_by(outcomes.c.participant_key)
            )
            for key, day in conn.execute(q):
                out[(partner, key)] = as_date(day)
    return out
