"""Which partners let their traffic train new models, and how many logged days a person needs to count."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from earlywarn.data.store import audit
from earlywarn.data.store.base import metadata
from earlywarn.data.store.migrate import migrate

DEFAULT_MIN_DAYS = 28  # a one-day probe is not a person's course: fewer logged days and they are left out

retraining_consent = sa.Table(  # a partner's opt-in: absent or revoked, its traffic never becomes training data
    "retraining_consent",
    metadata,
    sa.Column("partner", sa.String(64), primary_key=True),
    sa.Column("min_days", sa.Integer, nullable=False),
    sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
)


def allow_retraining(engine: Engine, partner: str, min_days: int = DEFAULT_MIN_DAYS, actor: str | None = None) -> None:
    if min_days < 1:
        raise ValueError("min_days must be at least 1")
    migrate(engine)
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        conn.execute(sa.delete(retraining_consent).where(retraining_consent.c.partner == partner))
        conn.execute(retraining_consent.insert().values(partner=partner, min_days=min_days, granted_at=now))
    audit.record(engine, actor or audit.cli_actor(), "partner.retraining", partner, {"allowed": True, "min_days": min_days})


def deny_retraining(engine: Engine, partner: str, actor: str | None = None) -> None:
    migrate(engine)
    with engine.begin() as conn:
        q = retraining_consent.update().where(retraining_consent.c.partner == partner, retraining_consent.c.revoked_at.is_(None))
        conn.execute(q.values(revoked_at=dt.datetime.now(dt.UTC)))
    audit.record(engine, actor or audit.cli_actor(), "partner.retraining", partner, {"allowed": False})


def retraining_partners(engine: Engine) -> dict[str, int]:
    """Partners that opted in, with the logged days each of their people needs to be used."""
    migrate(engine)
    c = retraining_consent.c
    with engine.connect() as conn:
        return {p: int(d) for p, d in conn.execute(sa.select(c.partner, c.min_days).where(c.revoked_at.is_(None)))}
