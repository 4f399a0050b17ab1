"""The audit trail (HIPAA 164.312(b)): append-only, hash-chained records of who did what to keys, partners, consent,
retention, models and authentication. Never a participant id, key or signal value."""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import json
import math
import os
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from earlywarn.data.store.base import metadata
from earlywarn.data.store.migrate import migrate

GENESIS = "0" * 64

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),  # 1, 2, 3, ...: a gap or a swap breaks the chain
    sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("actor", sa.String(120), nullable=False),  # an OS user for the CLI, `service` for the API
    sa.Column("action", sa.String(40), nullable=False),  # e.g. key.create, auth.failure, participant.forget
    sa.Column("subject", sa.String(200), nullable=False),  # a partner, key id, model version, client address
    sa.Column("detail", sa.JSON, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False, unique=True),  # two writers racing: one insert fails, retried
    sa.Column("hash", sa.String(64), nullable=False),
)


@dataclass(frozen=True)
class Entry:
    seq: int
    at: dt.datetime
    actor: str
    action: str
    subject: str
    detail: dict[str, Any]
    prev_hash: str
    hash: str


def cli_actor(by: str | None = None) -> str:
    """Who runs a command: the name they give (`--by`) beside the OS account that ran it."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no account name (some containers)
        user = f"uid {os.getuid()}" if hasattr(os, "getuid") else "unknown"
    return f"{by} (as {user})" if by else user


def _digest(prev: str, seq: int, at: dt.datetime, actor: str, action: str, subject: str, detail: dict[str, Any]) -> str:
    body = json.dumps([prev, seq, _utc(at).isoformat(), actor, action, subject, detail], sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()


def _utc(t: dt.datetime) -> dt.datetime:
    return (t if t.tzinfo else t.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)


def record(engine: Engine, actor: str, action: str, subject: str, detail: dict[str, Any] | None = None) -> Entry:
    """Append one entry chained to the last; retried when another writer appended at the same moment."""
    migrate(engine)
    detail = json.loads(json.dumps(_finite(detail or {}), default=str))  # stored exactly as it is hashed
    for _ in range(20):
        at = dt.datetime.now(dt.UTC).replace(microsecond=0)
        try:
            with engine.begin() as conn:
                last = conn.execute(
                    sa.select(audit_log.c.seq, audit_log.c.hash).order_by(audit_log.c.seq.desc()).limit(1)
                ).first()
                seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
                digest = _digest(prev, seq, at, actor, action, subject, detail)
                row = {"seq": seq, "at": at, "actor": actor[:120], "action": action, "subject": subject[:200]}
                conn.execute(audit_log.insert().values(**row, detail=detail, prev_hash=prev, hash=digest))
                return Entry(seq, at, actor[:120], action, subject[:200], detail, prev, digest)
        except sa.exc.IntegrityError:
            continue
    raise RuntimeError("could not append to the audit log: too many concurrent writers")


def _finite(value: Any) -> Any:
    """JSON columns take no NaN (PostgreSQL refuses it): an unmeasured figure is null."""
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def entries(engine: Engine, since: dt.datetime | None = None) -> list[Entry]:
    migrate(engine)
    q = sa.select(audit_log).order_by(audit_log.c.seq)
    if since is not None:
        q = q.where(audit_log.c.at >= since)
    with engine.connect() as conn:
        return [Entry(**dict(r)) for r in conn.execute(q).mappings()]


def verify(engine: Engine) -> tuple[int, str | None]:
    """(entries checked, the first problem or None): each entry's hash recomputed from its fields and its
    predecessor's hash, sequence numbers without gaps from 1."""
    prev, n = GENESIS, 0
    for n, e in enumerate(entries(engine), start=1):
        if e.seq != n:
            return n - 1, f"entry {n} is missing (found {e.seq} next)"
        if e.prev_hash != prev:
            return n - 1, f"entry {e.seq} does not follow entry {e.seq - 1}"
        if _digest(prev, e.seq, e.at, e.actor, e.action, e.subject, e.detail) != e.hash:
            return n - 1, f"entry {e.seq} was changed after it was written"
        prev = e.hash
    return n, None
