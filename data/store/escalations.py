"""Escalation episodes as append-only changes, and what care teams said they did about each alert."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from earlywarn.data.episodes import Episode
from earlywarn.data.store.base import as_date, keys_by_partner, metadata

escalation_changes = sa.Table(  # append-only facts about escalation episodes (data/episodes.py)
    "escalation_changes",
    metadata,
    sa.Column("record_id", sa.String(36), primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("partner", sa.String(64), nullable=False),
    sa.Column("participant_key", sa.String(64), nullable=False),
    sa.Column("alert_id", sa.String(36), nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),  # open | high | close
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("reason", sa.String(200)),
    sa.Index("ix_escalation_changes_partner_participant", "partner", "participant_key"),
)


alert_feedback = sa.Table(  # what a care team did about an escalation (POST /v1/alerts/{alert_id}/feedback)
    "alert_feedback",
    metadata,
    sa.Column("record_id", sa.String(36), primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("partner", sa.String(64), nullable=False),
    sa.Column("participant_key", sa.String(64), nullable=False),
    sa.Column("alert_id", sa.String(36), nullable=False, index=True),
    sa.Column("action", sa.String(24), nullable=False),
    sa.Column("note", sa.String(500)),
)


def open_episodes(engine: Engine, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Episode]:
    """The open escalation episode (no close recorded) of each (partner, participant key) that has one."""
    by_partner = keys_by_partner(pairs)
    c = escalation_changes.c
    closed = sa.func.max(sa.case((c.kind == "close", 1), else_=0))
    out: dict[tuple[str, str], Episode] = {}
    with engine.connect() as conn:
        for partner, keys in by_partner.items():
            q = (
                sa.select(c.participant_key, c.alert_id, sa.func.min(c.day), sa.func.max(c.day))
                .where(c.partner == partner, c.participant_key.in_(sorted(keys)))
                .group_by(c.participant_key, c.alert_id)
                .having(closed == 0)
            )
            for key, alert_id, first, last in conn.execute(q):
                out[(partner, key)] = Episode(alert_id, as_date(first), as_date(last))
    return out


def alert_participant(engine: Engine, partner: str, alert_id: str) -> str | None:
    """The participant key of this partner's escalation episode with this alert id (None: not theirs, or none)."""
    c = escalation_changes.c
    q = sa.select(c.participant_key).where(c.partner == partner, c.alert_id == alert_id, c.kind == "open").limit(1)
    with engine.connect() as conn:
        return conn.execute(q).scalar_one_or_none()


ACTED_ON = ("contacted", "already_in_care")  # feedback saying care acted on (or was already around) an escalation


def read_alerts(engine: Engine, partner: str | Iterable[str] | None = None, since: dt.date | None = None) -> pd.DataFrame:
    """One row per escalation episode opened on or after `since`: partner, participant_key, alert_id, day, and the
    care team's latest feedback action (None: none yet)."""
    c, f = escalation_changes.c, alert_feedback.c
    q = sa.select(c.partner, c.participant_key, c.alert_id, c.day).where(c.kind == "open")
    if since is not None:
        q = q.where(c.day >= since)
    if partner is not None:
        q = q.where(c.partner.in_([partner] if isinstance(partner, str) else list(partner)))
    feedback = sa.select(f.alert_id, f.partner, f.action, f.created_at)
    with engine.connect() as conn:
        opened = pd.DataFrame(conn.execute(q).fetchall(), columns=["partner", "participant_key", "alert_id", "day"])
        actions = pd.DataFrame(conn.execute(feedback).fetchall(), columns=["alert_id", "partner", "action", "created_at"])
    latest = actions.sort_values("created_at").drop_duplicates(["partner", "alert_id"], keep="last")
    out = opened.merge(latest[["partner", "alert_id", "action"]], on=["partner", "alert_id"], how="left")
    out["day"] = out["day"].map(as_date) if len(out) else out["day"]
    return out.astype({"action": object}).where(out.notna(), None)
