"""Each partner's mode (silent or live) and the go-live criteria fixed before silent mode began, as an append-only log."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from earlywarn.data.store import audit
from earlywarn.data.store.base import metadata
from earlywarn.data.store.migrate import migrate

SILENT, LIVE = "silent", "live"

partner_modes = sa.Table(  # every change of a partner's mode, with the criteria and figures it was judged on
    "partner_modes",
    metadata,
    sa.Column("record_id", sa.String(36), primary_key=True),
    sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("partner", sa.String(64), nullable=False, index=True),
    sa.Column("seq", sa.Integer, nullable=False),  # the partner's n-th change: order without trusting clocks
    sa.Column("mode", sa.String(8), nullable=False),  # silent | live
    sa.Column("criteria", sa.JSON, nullable=False),  # the go-live criteria in force (recorded when silent mode began)
    sa.Column("measured", sa.JSON),  # going live: each criterion's measured figure
    sa.Column("override", sa.String(500)),  # going live without meeting them: the operator's stated reason
    sa.UniqueConstraint("partner", "seq", name="uq_partner_modes_partner_seq"),  # two changes at once: one fails
)


@dataclass(frozen=True)
class ModeChange:
    partner: str
    mode: str
    criteria: dict[str, Any]
    changed_at: dt.datetime
    measured: dict[str, Any] | None = None
    override: str | None = None


def mode_history(engine: Engine, partner: str) -> list[ModeChange]:
    migrate(engine)
    c = partner_modes.c
    q = sa.select(c.partner, c.mode, c.criteria, c.changed_at, c.measured, c.override).where(c.partner == partner)
    with engine.connect() as conn:
        return [ModeChange(*row) for row in conn.execute(q.order_by(c.seq))]


def current_mode(engine: Engine, partner: str) -> ModeChange | None:
    """The partner's latest mode change (None: never set, which is live, as before silent mode existed)."""
    history = mode_history(engine, partner)
    return history[-1] if history else None


def silent_partners(engine: Engine) -> set[str]:
    """Partners whose latest mode is silent."""
    c = partner_modes.c
    latest = sa.select(c.partner, sa.func.max(c.seq).label("seq")).group_by(c.partner).subquery()
    q = sa.select(c.partner).join(latest, sa.and_(c.partner == latest.c.partner, c.seq == latest.c.seq))
    with engine.connect() as conn:
        return {p for (p,) in conn.execute(q.where(c.mode == SILENT))}


def record_mode(engine: Engine, change: ModeChange, actor: str | None = None) -> None:
    migrate(engine)
    row = {"record_id": str(uuid.uuid4()), "changed_at": change.changed_at, "partner": change.partner, "mode": change.mode}
    row |= {"criteria": change.criteria, "measured": change.measured, "override": change.override}
    with engine.begin() as conn:
        seq = conn.execute(sa.select(sa.func.count()).where(partner_modes.c.partner == change.partner)).scalar_one()
        conn.execute(partner_modes.insert().values(**row, seq=int(seq) + 1))
    detail = {"mode": change.mode, "override": change.override, "measured": change.measured}
    audit.record(engine, actor or audit.cli_actor(), "partner.mode", change.partner, detail)
