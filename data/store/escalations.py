"""Escalation episodes as append-only changes, and what care teams said they did about each alert."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from earlywarn.data.episodes import Change, Episode, fold
from earlywarn.data.store.base import as_date, keys_by_partner, metadata
from earlywarn.data.store.outcomes import read_outcomes

escalation_changes = sa.Table(  # append-only facts about escalation episodes (data/episodes.py)
    "escalation_changes",
    metadata,
    sa.Column("record_id", sa.String(36), primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("partner", sa.String(64), nullable=False),
    sa.Column("participant_key", sa.String(64), nullable=False),
    sa.Column("alert_id", sa.String(36), nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),  # open | high | remind | rise | snooze | lost | close | post | event
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("reason", sa.String(200)),
    sa.Column("risk", sa.Float),  # open and rise: the risk notified
    sa.Column("until", sa.Date),  # snooze: the last quiet day
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


def latest_episodes(engine: Engine, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Episode]:
    """The latest escalation episode (open or closed) of each (partner, participant key) that has one, folded from
    its stored changes: by day, the opening first, then in the order they were made."""
    c = escalation_changes.c
    out: dict[tuple[str, str], Episode] = {}
    with engine.connect() as conn:
        for partner, keys in keys_by_partner(pairs).items():
            opened = (
                sa.select(c.participant_key, c.alert_id)
                .where(c.partner == partner, c.participant_key.in_(sorted(keys)), c.kind == "open")
                .order_by(c.day, c.created_at)
            )
            latest = {key: alert_id for key, alert_id in conn.execute(opened)}
            if not latest:
                continue
            q = (
                sa.select(c.participant_key, c.alert_id, c.kind, c.day, c.reason, c.risk, c.until)
                .where(c.partner == partner, c.alert_id.in_(sorted(latest.values())))
                .order_by(c.day, sa.case((c.kind == "open", 0), else_=1), c.created_at)
            )
            changes: dict[str, list[Change]] = {}
            for key, alert_id, kind, day, reason, risk, until in conn.execute(q):
                until = None if until is None else as_date(until)
                changes.setdefault(key, []).append(Change(alert_id, kind, as_date(day), reason, risk, until))
            for key, history in changes.items():
                if (episode := fold(history)) is not None:
                    out[(partner, key)] = episode
    return out


def alert_participant(engine: Engine, partner: str, alert_id: str) -> str | None:
    """The participant key of this partner's escalation episode with this alert id (None: not theirs, or none)."""
    c = escalation_changes.c
    q = sa.select(c.participant_key).where(c.partner == partner, c.alert_id == alert_id, c.kind == "open").limit(1)
    with engine.connect() as conn:
        return conn.execute(q).scalar_one_or_none()


ACTED_ON = ("contacted", "already_in_care")  # feedback saying care acted on (or was already around) an escalation


def read_alerts(
    engine: Engine, partner: str | Iterable[str] | None = None, since: dt.date | None = None, washout_days: int = 28
) -> pd.DataFrame:
    """One row per escalation episode opened on or after `since`: partner, participant_key, alert_id, day, the care
    team's latest feedback action (None: none yet), and `post_event`: it opened within the washout after an event
    reported for the person, however late the report came (neither an early warning nor a false alarm)."""
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
    out = out.astype({"action": object}).where(out.notna(), None)
    return out.assign(post_event=_after_events(engine, out, washout_days))


def _after_events(engine: Engine, alerts: pd.DataFrame, washout_days: int) -> list[bool]:
    if alerts.empty:
        return []
    events = read_outcomes(engine, partner=sorted(set(alerts["partner"])))
    if events.empty:
        return [False] * len(alerts)
    pairs = (
        alerts[["partner", "participant_key", "day"]]
        .reset_index()
        .merge(events[["partner", "participant_key", "date"]], on=["partner", "participant_key"])
    )
    gap = (pd.to_datetime(pairs["day"]) - pd.to_datetime(pairs["date"])).dt.days
    after = set(pairs.loc[(gap >= 1) & (gap <= washout_days), "index"])
    return [i in after for i in range(len(alerts))]
