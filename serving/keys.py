"""Partner API keys: created once and shown once, stored only as a hash, compared in constant time, revocable."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

metadata = sa.MetaData()
api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("key_id", sa.String(16), primary_key=True),
    sa.Column("partner", sa.String(64), nullable=False, index=True),
    sa.Column("secret_sha256", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
)
PREFIX = "ew"
_DUMMY = hashlib.sha256(b"no such key").hexdigest()


def _digest(secret: str) -> str:
    # Keys carry 256 random bits, so a fast hash is enough; a slow KDF would only slow every request.
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class NewKey:
    key_id: str
    partner: str
    token: str


def create_key(engine: Engine, partner: str) -> NewKey:
    if not partner or len(partner) > 64 or not partner.replace("-", "").replace("_", "").isalnum():
        raise ValueError("partner names are 1-64 letters, digits, '-' or '_'")
    metadata.create_all(engine)
    key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    with engine.begin() as conn:
        conn.execute(
            api_keys.insert().values(
                key_id=key_id, partner=partner, secret_sha256=_digest(secret), created_at=dt.datetime.now(dt.UTC)
            )
        )
    return NewKey(key_id, partner, f"{PREFIX}_{key_id}_{secret}")


def revoke(engine: Engine, key_id: str | None = None, partner: str | None = None) -> int:
    """Revoke one key, or every key of a partner; returns how many were revoked."""
    if not key_id and not partner:
        raise ValueError("name a key id or a partner")
    metadata.create_all(engine)
    q = api_keys.update().where(api_keys.c.revoked_at.is_(None)).values(revoked_at=dt.datetime.now(dt.UTC))
    q = q.where(api_keys.c.key_id == key_id) if key_id else q.where(api_keys.c.partner == partner)
    with engine.begin() as conn:
        return int(conn.execute(q).rowcount or 0)


def list_keys(engine: Engine) -> list[dict]:
    metadata.create_all(engine)
    with engine.connect() as conn:
        return [
            dict(r)
            for r in conn.execute(
                sa.select(api_keys.c.key_id, api_keys.c.partner, api_keys.c.created_at, api_keys.c.revoked_at)
            ).mappings()
        ]


class KeyVerifier:
    """Looks each key up in the store (so revocation takes effect at once) and falls back to the last known
    state of that key while the store is unreachable, so an outage does not lock partners out."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._known: dict[str, tuple[str, str, bool]] = {}
        metadata.create_all(engine)

    def partner_for(self, authorization: str | None) -> str | None:
        if not authorization or not authorization.startswith("Bearer "):
            return None
        parts = authorization[7:].strip().split("_", 2)
        if len(parts) != 3 or parts[0] != PREFIX:
            hmac.compare_digest(_DUMMY, _DUMMY)
            return None
        key_id, secret = parts[1], parts[2]
        row = self._lookup(key_id)
        stored = row[1] if row else _DUMMY
        ok = hmac.compare_digest(_digest(secret), stored)  # constant time, also for unknown ids
        if not row or not ok or row[2]:
            return None
        return row[0]

    def _lookup(self, key_id: str) -> tuple[str, str, bool] | None:
        try:
            with self.engine.connect() as conn:
                r = conn.execute(
                    sa.select(api_keys.c.partner, api_keys.c.secret_sha256, api_keys.c.revoked_at).where(
                        api_keys.c.key_id == key_id
                    )
                ).first()
        except sa.exc.SQLAlchemyError:
            return self._known.get(key_id)
        if r is None:
            self._known.pop(key_id, None)
            return None
        self._known[key_id] = (r[0], r[1], r[2] is not None)
        return self._known[key_id]
