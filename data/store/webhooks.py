"""Care-team webhooks: each partner's URL and signing secret, and the durable queue of deliveries to them."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import secrets
import socket
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from earlywarn.data.store import audit
from earlywarn.data.store.base import metadata
from earlywarn.data.store.keys import api_keys
from earlywarn.data.store.migrate import migrate

webhooks = sa.Table(  # each partner's care-team webhook and its Standard Webhooks signing secret
    "webhooks",
    metadata,
    sa.Column("partner", sa.String(64), primary_key=True),
    sa.Column("url", sa.String(2000), nullable=False),
    sa.Column("secret", sa.String(64), nullable=False),  # the service must sign with it, so it cannot be a hash
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

webhook_deliveries = sa.Table(  # every care-team notification until delivered or given up: survives restarts
    "webhook_deliveries",
    metadata,
    sa.Column("record_id", sa.String(36), primary_key=True),  # the Standard Webhooks `webhook-id`, the same on retries
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("partner", sa.String(64), nullable=False),
    sa.Column("participant_key", sa.String(64), nullable=False),  # so withdrawal and retention find it
    sa.Column("event", sa.String(32), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),  # next try; a claim pushes it out (a lease)
    sa.Column("delivered_at", sa.DateTime(timezone=True)),
    sa.Column("gave_up_at", sa.DateTime(timezone=True)),
    sa.Column("last_error", sa.String(200)),
    sa.Index("ix_webhook_deliveries_pending", "delivered_at", "gave_up_at", "due_at"),
)


@dataclass(frozen=True)
class Webhook:
    partner: str
    url: str
    secret: str


@dataclass(frozen=True)
class Delivery:
    record_id: str
    partner: str
    event: str
    payload: dict[str, Any]
    attempts: int
    due_at: dt.datetime


def destination_problem(url: str, production: bool, resolve: Any = socket.getaddrinfo) -> str | None:
    """Why escalations may not be posted to `url`, or None. In production only https to hosts whose every address is
    public: never private, loopback, link-local (cloud metadata lives at 169.254.169.254) or reserved ones — checked
    when the URL is set and again before each delivery, since DNS can change. In demo mode plain http is allowed to
    this machine, for testing."""
    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        return "the webhook URL has no host"
    local = host in ("127.0.0.1", "localhost", "::1")
    if parts.scheme != "https" and (production or not (parts.scheme == "http" and local)):
        return "webhook URLs must be https" + ("" if production else " (plain http only to this machine, for testing)")
    if not production:
        return None
    try:
        addresses = {str(info[4][0]).split("%")[0] for info in resolve(host, parts.port or 443)}
    except (OSError, UnicodeError):
        return f"the webhook host {host!r} does not resolve"
    if not addresses or not all(ipaddress.ip_address(a).is_global for a in addresses):
        return (
            f"the webhook host {host!r} resolves to a private, loopback, link-local or reserved address; in production "
            "escalations go only to public https endpoints"
        )
    return None


def set_webhook(engine: Engine, partner: str, url: str, production: bool = False, actor: str | None = None) -> Webhook:
    """Point a partner's escalations at `url` with a new signing secret (shown once to the operator); only for a
    partner the store has issued a key to, and only to a destination `destination_problem` allows."""
    problem = destination_problem(url, production)
    if problem:
        raise ValueError(problem)
    migrate(engine)
    with engine.connect() as conn:
        if conn.execute(sa.select(api_keys.c.key_id).where(api_keys.c.partner == partner).limit(1)).first() is None:
            raise ValueError(f"no partner {partner!r} in this store (create its key first: `earlywarn keys create`)")
    hook = Webhook(partner, url, "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode())
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        conn.execute(sa.delete(webhooks).where(webhooks.c.partner == partner))
        conn.execute(webhooks.insert().values(partner=partner, url=url, secret=hook.secret, updated_at=now))
    audit.record(engine, actor or audit.cli_actor(), "webhook.set", partner, {"host": urlsplit(url).hostname})
    return hook


def webhook_for(engine: Engine, partner: str) -> Webhook | None:
    with engine.connect() as conn:
        row = conn.execute(sa.select(webhooks.c.url, webhooks.c.secret).where(webhooks.c.partner == partner)).first()
    return None if row is None else Webhook(partner, row[0], row[1])


def delivery_record(partner: str, participant_key: str, event: str, payload: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    """A new delivery, due at once."""
    when = now.isoformat()
    return {
        "record_id": f"msg_{uuid.uuid4().hex}",
        "created_at": when,
        "partner": partner,
        "participant_key": participant_key,
        "event": event,
        "payload": payload,
        "attempts": 0,
        "due_at": when,
    }


def claim_due(engine: Engine, now: dt.datetime, lease: dt.timedelta, limit: int = 50) -> list[Delivery]:
    """Deliveries due now, each claimed for `lease` (its due time pushed out only if no other replica moved it first),
    so two replicas never send the same one at once; one whose sender died is taken up again when the lease ends."""
    d = webhook_deliveries.c
    pending = sa.and_(d.delivered_at.is_(None), d.gave_up_at.is_(None))
    q = sa.select(d.record_id, d.partner, d.event, d.payload, d.attempts, d.due_at).where(pending, d.due_at <= now)
    claimed = []
    with engine.begin() as conn:
        for rid, partner, event, payload, attempts, due in conn.execute(q.order_by(d.due_at).limit(limit)).fetchall():
            moved = conn.execute(
                sa.update(webhook_deliveries).where(d.record_id == rid, d.due_at == due).values(due_at=now + lease)
            )
            if moved.rowcount == 1:
                claimed.append(Delivery(rid, partner, event, payload, attempts, due))
    return claimed


def finish(
    engine: Engine, record_id: str, *, delivered: bool, attempts: int, retry_at: dt.datetime | None, error: str | None
) -> None:
    """Record a try: delivered, retried at `retry_at`, or given up (no `retry_at`)."""
    now = dt.datetime.now(dt.UTC)
    values: dict[str, Any] = {"attempts": attempts, "last_error": error}
    if delivered:
        values["delivered_at"] = now
    elif retry_at is None:
        values["gave_up_at"] = now
    else:
        values["due_at"] = retry_at
    with engine.begin() as conn:
        conn.execute(sa.update(webhook_deliveries).where(webhook_deliveries.c.record_id == record_id).values(**values))


def read_deliveries(engine: Engine) -> list[dict[str, Any]]:
    """Every delivery with its state (for operators and tests)."""
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(webhook_deliveries).order_by(webhook_deliveries.c.created_at)).mappings()]
