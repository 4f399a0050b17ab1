"""Partner API keys in the store: created and shown once, kept only as a hash, revocable (verified by serving)."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from earlywarn.data.store import audit
from earlywarn.data.store.base import metadata
from earlywarn.data.store.migrate import migrate

api_keys = sa.Table(  # partner API keys, stored as hashes (data/keys.py)
    "api_keys",
    metadata,
    sa.Column("key_id", sa.String(16), primary_key=True),
    sa.Column("partner", sa.String(64), nullable=False, index=True),
    sa.Column("secret_sha256", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
    sa.Column("expires_at", sa.DateTime(timezone=True)),  # None: no expiry
)

PREFIX = "ew"
DUMMY_DIGEST = hashlib.sha256(b"no such key").hexdigest()


def digest(secret: str) -> str:
    # Keys carry 256 random bits, so a fast hash is enough; a slow KDF would only slow every request.
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class NewKey:
    key_id: str
    partner: str
    token: str


# ASCII only: Unicode letters would admit lookalikes ("асме" in Cyrillic is not "acme").
PARTNER_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


def create_key(engine: Engine, partner: str, expires_in: dt.timedelta | None = None, actor: str | None = None) -> NewKey:
    """A new key for the partner (optionally expiring after `expires_in`); the token is returned once."""
    if not PARTNER_NAME.fullmatch(partner):
        raise ValueError(f"partner {partner!r}: use 1-64 lowercase ASCII letters, digits, '-' or '_' (first a letter or digit)")
    migrate(engine)
    key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        conn.execute(
            api_keys.insert().values(
                key_id=key_id,
                partner=partner,
                secret_sha256=digest(secret),
                created_at=now,
                expires_at=now + expires_in if expires_in else None,
            )
        )
    expiry = {"expires_at": now + expires_in if expires_in else None}
    audit.record(engine, actor or audit.cli_actor(), "key.create", f"{partner}/{key_id}", expiry)
    return NewKey(key_id, partner, f"{PREFIX}_{key_id}_{secret}")


def revoke(engine: Engine, key_id: str | None = None, partner: str | None = None, actor: str | None = None) -> int:
    """Revoke one key, or every key of a partner; returns how many were revoked."""
    if not key_id and not partner:
        raise ValueError("name a key id or a partner")
    migrate(engine)
    q = api_keys.update().where(api_keys.c.revoked_at.is_(None)).values(revoked_at=dt.datetime.now(dt.UTC))
    q = q.where(api_keys.c.key_id == key_id) if key_id else q.where(api_keys.c.partner == partner)
    with engine.begin() as conn:
        n = int(conn.execute(q).rowcount or 0)
    audit.record(engine, actor or audit.cli_actor(), "key.revoke", key_id or f"{partner}/*", {"revoked": n})
    return n


def list_keys(engine: Engine) -> list[dict]:
    migrate(engine)
    with engine.connect() as conn:
        return [
            dict(r)
            for r in conn.execute(
                sa.select(
                    api_keys.c.key_id, api_keys.c.partner, api_keys.c.created_at, api_keys.c.revoked_at, api_keys.c.expires_at
                )
            ).mappings()
        ]


def key_state(key: dict, now: dt.datetime | None = None) -> str:
    """What a listed key can do now: `revoked <when>`, `expired <when>`, `active, expires <when>` or `active`."""
    now = now or dt.datetime.now(dt.UTC)

    def utc(t: dt.datetime) -> dt.datetime:
        return t if t.tzinfo else t.replace(tzinfo=dt.UTC)  # SQLite hands times back without their zone

    if key["revoked_at"] is not None:
        return f"revoked {utc(key['revoked_at']):%Y-%m-%d %H:%M}"
    if key["expires_at"] is None:
        return "active"
    expires = utc(key["expires_at"])
    return f"expired {expires:%Y-%m-%d %H:%M}" if expires <= now else f"active, expires {expires:%Y-%m-%d %H:%M}"
