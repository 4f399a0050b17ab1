"""Record tables written through the spool: inserted exactly once, counted, and purged by age."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from earlywarn.data.settings import settings
from earlywarn.data.store import audit
from earlywarn.data.store.base import checkpoint
from earlywarn.data.store.escalations import alert_feedback, escalation_changes
from earlywarn.data.store.migrate import migrate
from earlywarn.data.store.outcomes import outcomes
from earlywarn.data.store.predictions import predictions
from earlywarn.data.store.webhooks import webhook_deliveries
from earlywarn.data.store.withdrawals import withdrawn

TABLES = {
    "predictions": predictions,
    "outcomes": outcomes,
    "escalation_changes": escalation_changes,
    "alert_feedback": alert_feedback,
    "webhook_deliveries": webhook_deliveries,
}


def _coerce(table: sa.Table, record: dict[str, Any]) -> dict[str, Any]:
    """Records arrive as JSON from the spool: turn ISO strings back into dates and times."""
    out = dict(record)
    for col in table.columns:
        v = out.get(col.name)
        if isinstance(v, str) and isinstance(col.type, sa.DateTime):
            out[col.name] = dt.datetime.fromisoformat(v)
        elif isinstance(v, str) and isinstance(col.type, sa.Date):
            out[col.name] = dt.date.fromisoformat(v)
    return out


def insert_ignoring_duplicates(engine: Engine, table_name: str, records: Iterable[dict[str, Any]]) -> int:
    """Insert records whose record_id is not stored yet; returns how many were new. Safe to repeat (exactly once)."""
    table = TABLES[table_name]
    rows = _not_withdrawn(engine, [_coerce(table, r) for r in records])
    if not rows:
        return 0
    stmt: sa.Executable
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        stmt = pg_insert(table).on_conflict_do_nothing(index_elements=["record_id"])
    elif engine.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(table).on_conflict_do_nothing(index_elements=["record_id"])
    else:  # pragma: no cover - other databases are not supported
        raise ValueError(f"unsupported database {engine.dialect.name}")
    with engine.begin() as conn:
        result = conn.execute(stmt, rows)
    return int(result.rowcount or 0)


def _not_withdrawn(engine: Engine, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop records of participants who withdrew consent — made before (a spool may still hold some) or after (the
    service answers them 'withdrawn' and stores nothing, but a replica may not have heard yet)."""
    if not rows:
        return rows
    gone = withdrawn(engine, {(r["partner"], r["participant_key"]) for r in rows})
    return [r for r in rows if (r["partner"], r["participant_key"]) not in gone] if gone else rows


def existing_ids(engine: Engine, table_name: str, record_ids: list[str]) -> set[str]:
    """Which of these record ids the table already holds."""
    table = TABLES[table_name]
    with engine.connect() as conn:
        return {r[0] for r in conn.execute(sa.select(table.c.record_id).where(table.c.record_id.in_(record_ids)))}


def count(engine: Engine, table_name: str, partners: Iterable[str] | None = None) -> int:
    """Records stored in a table, all of them or those of some partners."""
    table = TABLES[table_name]
    q = sa.select(sa.func.count()).select_from(table)
    if partners is not None:
        q = q.where(table.c.partner.in_(list(partners)))
    with engine.connect() as conn:
        return int(conn.execute(q).scalar_one())


def retention_days() -> int:
    return settings().retention_days


def purge(engine: Engine, before: dt.datetime, actor: str | None = None) -> dict[str, int]:
    """Delete predictions (with their inputs), outcomes, escalation changes and feedback stored before `before`;
    returns how many rows each table lost. Withdrawal records stay: they are what keeps a withdrawn person out."""
    migrate(engine)
    deleted = {}
    with engine.begin() as conn:
        for name, table in TABLES.items():
            deleted[name] = int(conn.execute(sa.delete(table).where(table.c.created_at < before)).rowcount or 0)
    checkpoint(engine)
    audit.record(engine, actor or audit.cli_actor(), "store.purge", "store", {"before": before} | deleted)
    return deleted
