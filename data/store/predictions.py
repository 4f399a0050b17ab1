"""Logged predictions: what was scored for whom, with the summaries drift monitoring reads and the windows retraining reads."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from earlywarn.data.store.base import as_date, metadata

predictions = sa.Table(
    "predictions",
    metadata,
    sa.Column("record_id", sa.String(36), primary_key=True),  # uuid; replays insert each record at most once
    sa.Column("request_id", sa.String(36), nullable=False, index=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("partner", sa.String(64), nullable=False),
    sa.Column("participant_key", sa.String(64), nullable=False),
    sa.Column("model_version", sa.String(32), nullable=False),
    sa.Column("window_end", sa.Date, nullable=False),
    sa.Column("status", sa.String(24), nullable=False),
    sa.Column("risk", sa.Float),
    sa.Column("band", sa.String(16)),
    sa.Column("days_observed", sa.Integer, nullable=False),
    sa.Column("summary", sa.JSON, nullable=False),  # model-input summary for drift monitoring: per-signal mean and missing share
    # The model-input window itself ([lookback days][features], oldest first, ending on window_end), for retraining.
    sa.Column("inputs", sa.JSON),
    sa.Index("ix_predictions_partner_participant", "partner", "participant_key"),
)


def read_predictions(
    engine: Engine,
    since: dt.datetime | None = None,
    partner: str | Iterable[str] | None = None,
    window_end: tuple[dt.date, dt.date] | None = None,
    sample: float = 1.0,
) -> pd.DataFrame:
    """Logged predictions (logged since a time, for some partners, with window ends in [first, last]),
    summaries expanded into columns (the heavy input windows are left out: see read_inputs).

    sample < 1 keeps that share of participants, all of their predictions: pseudonymous keys are HMAC hex, so a
    key-prefix cut is a uniform, repeatable sample of people, done by the database."""
    q = _filtered(sa.select(*[c for c in predictions.columns if c.name != "inputs"]), since, partner, window_end, sample)
    with engine.connect() as conn:
        frame = pd.DataFrame(conn.execute(q).mappings().all())
    if frame.empty:
        return frame
    summary = pd.DataFrame.from_records(frame.pop("summary").tolist())
    summary = summary.drop(columns=[c for c in summary.columns if c in frame.columns])
    return pd.concat([frame.reset_index(drop=True), summary], axis=1)


def _filtered(
    q: Any,
    since: dt.datetime | None,
    partner: str | Iterable[str] | None,
    window_end: tuple[dt.date, dt.date] | None,
    sample: float = 1.0,
) -> Any:
    if since is not None:
        q = q.where(predictions.c.created_at >= since)
    if partner is not None:
        q = q.where(predictions.c.partner.in_([partner] if isinstance(partner, str) else list(partner)))
    if window_end is not None:
        q = q.where(predictions.c.window_end.between(*window_end))
    if sample < 1.0:
        q = q.where(predictions.c.participant_key < f"{min(int(sample * 16**6), 16**6 - 1):06x}")
    return q


def scored_days(
    engine: Engine, partner: str | Iterable[str] | None = None, window_end: tuple[dt.date, dt.date] | None = None
) -> pd.DataFrame:
    """Each (partner, participant_key, window_end) scored at least once: the participant-days behind alert load."""
    c = predictions.c
    q = _filtered(sa.select(c.partner, c.participant_key, c.window_end).distinct(), None, partner, window_end, 1.0)
    with engine.connect() as conn:
        rows = conn.execute(q.where(c.status == "scored")).fetchall()
    frame = pd.DataFrame(rows, columns=["partner", "participant_key", "window_end"])
    return frame.assign(window_end=pd.to_datetime(frame["window_end"]))


def count_predictions(
    engine: Engine,
    since: dt.datetime | None = None,
    partner: str | Iterable[str] | None = None,
    window_end: tuple[dt.date, dt.date] | None = None,
) -> int:
    """How many predictions read_predictions would return (without sampling)."""
    q = _filtered(sa.select(sa.func.count()).select_from(predictions), since, partner, window_end)
    with engine.connect() as conn:
        return int(conn.execute(q).scalar_one())


def read_inputs(engine: Engine, since: dt.date | None = None) -> pd.DataFrame:
    """The daily inputs the service scored, one row per (partner, participant, day): where windows overlap, the
    latest prediction's copy of a day wins. Columns: partner, participant_key, date, then the window's features."""
    q = sa.select(
        predictions.c.partner,
        predictions.c.participant_key,
        predictions.c.window_end,
        predictions.c.created_at,
        predictions.c.inputs,
    ).where(predictions.c.inputs.is_not(None))
    if since is not None:
        q = q.where(predictions.c.window_end >= since)
    with engine.connect() as conn:
        rows = conn.execute(q.order_by(predictions.c.created_at)).all()
    parts = []
    for partner, key, end, _, window in rows:
        if not window:
            continue
        days = pd.date_range(end=pd.Timestamp(end), periods=len(window), freq="D")
        parts.append((partner, key, days, window))
    if not parts:
        return pd.DataFrame(columns=["partner", "participant_key", "date"])
    frame = pd.DataFrame([v for *_, w in parts for v in w], dtype="float64")
    frame.insert(0, "date", np.concatenate([d.to_numpy() for _, _, d, _ in parts]))
    frame.insert(0, "participant_key", np.repeat([k for _, k, _, _ in parts], [len(d) for _, _, d, _ in parts]))
    frame.insert(0, "partner", np.repeat([p for p, _, _, _ in parts], [len(d) for _, _, d, _ in parts]))
    return frame.drop_duplicates(["partner", "participant_key", "date"], keep="last").reset_index(drop=True)


def first_scored(engine: Engine, partner: str, keys: list[str]) -> dict[str, dt.date]:
    """The earliest window end this partner had scored for each of these participant keys (absent: never scored)."""
    if not keys:
        return {}
    c = predictions.c
    q = sa.select(c.participant_key, sa.func.min(c.window_end)).where(c.partner == partner, c.participant_key.in_(keys))
    with engine.connect() as conn:
        return {key: as_date(first) for key, first in conn.execute(q.group_by(c.participant_key))}
