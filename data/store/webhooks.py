"""Care-team webhooks: each partner's URL and signing secret, and the signature a receiver checks."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from earlywarn.data.store.base import metadata
from earlywarn.data.store.migrate import migrate

webhooks = sa.Table(  # each partner's care-team webhook and its signing secret (data/webhooks.py)
    "webhooks",
    metadata,
    sa.Column("partner", sa.String(64), primary_key=True),
    sa.Column("url", sa.String(2000), nullable=False),
    sa.Column("secret", sa.String(64), nullable=False),  # the service must sign with it, so it cannot be a hash
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

SIGNATURE_HEADER = "Earlywarn-Signature"
TOLERANCE_S = 300  # a receiver refuses signatures older than this (replayed deliveries)


@dataclass(frozen=True)
class Webhook:
    partner: str
    url: str
    secret: str


def set_webhook(engine: Engine, partner: str, url: str) -> Webhook:
    """Point a partner's escalations at `url` with a new signing secret (shown once to the operator)."""
    parts = urlsplit(url)
    local = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme != "https" and not (parts.scheme == "http" and local):
        raise ValueError("webhook URLs must be https (plain http only to this machine, for testing)")
    migrate(engine)
    hook = Webhook(partner, url, "whsec_" + secrets.token_hex(24))
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        conn.execute(sa.delete(webhooks).where(webhooks.c.partner == partner))
        conn.execute(webhooks.insert().values(partner=partner, url=url, secret=hook.secret, updated_at=now))
    return hook


def webhook_for(engine: Engine, partner: str) -> Webhook | None:
    with engine.connect() as conn:
        row = conn.execute(sa.select(webhooks.c.url, webhooks.c.secret).where(webhooks.c.partner == partner)).first()
    return None if row is None else Webhook(partner, row[0], row[1])


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """`t=<unix time>,v1=<hex HMAC-SHA256 of "<t>." + body>` (the scheme Stripe's webhooks use)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, header: str, body: bytes, now: float) -> bool:
    """What a receiver does: the signature matches and is recent."""
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    return abs(now - timestamp) <= TOLERANCE_S and hmac.compare_digest(sign(secret, timestamp, body), header)
