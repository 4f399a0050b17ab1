"""Verifies partner keys on every request: from a one-second cache, the store, or for short outages the last known state."""

from __future__ import annotations

import datetime as dt
import hmac
import math
import time

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from earlywarn.data.store import migrate
from earlywarn.data.store.keys import DUMMY_DIGEST, PREFIX, api_keys, digest

LAST_KNOWN_SECONDS = 300.0  # how long a key verified before a store outage stays accepted during it
FRESH_SECONDS = 1.0  # a key checked this recently is not looked up again: revocation reaches every replica within it


class KeyVerifier:
    """Looks each key up in the store at most once per `fresh_seconds` (so a revocation takes effect on every replica
    within a second; expiry is checked on every request) and, while the store is unreachable, accepts a key whose
    last successful check is under `last_known_seconds` old: a short outage does not lock partners out, and a key
    revoked during a long one stops working (fail closed)."""

    def __init__(self, engine: Engine, last_known_seconds: float = LAST_KNOWN_SECONDS, fresh_seconds: float = FRESH_SECONDS):
        self.engine = engine
        self.last_known_seconds, self.fresh_seconds = last_known_seconds, fresh_seconds
        self._known: dict[str, tuple[str, str, bool, dt.datetime | None, float]] = {}
        self._unknown: dict[str, float] = {}  # ids looked up and not found, cached alike: no timing tells them apart
        migrate(engine)

    @staticmethod
    def key_id(authorization: str | None) -> str:
        """The key id a request claims (the public part of `ew_<id>_<secret>`), or "-" when it claims none."""
        parts = (authorization or "")[7:].strip().split("_", 2) if (authorization or "").startswith("Bearer ") else []
        return parts[1][:32] if len(parts) == 3 and parts[0] == PREFIX else "-"

    def partner_for(self, authorization: str | None) -> str | None:
        if not authorization or not authorization.startswith("Bearer "):
            return None
        parts = authorization[7:].strip().split("_", 2)
        if len(parts) != 3 or parts[0] != PREFIX:
            hmac.compare_digest(DUMMY_DIGEST, DUMMY_DIGEST)
            return None
        key_id, secret = parts[1], parts[2]
        row = self._lookup(key_id)
        stored = row[1] if row else DUMMY_DIGEST
        ok = hmac.compare_digest(digest(secret), stored)  # constant time, also for unknown ids
        if not row or not ok or row[2]:
            return None
        expires = row[3]
        if expires is not None and (expires if expires.tzinfo else expires.replace(tzinfo=dt.UTC)) <= dt.datetime.now(dt.UTC):
            return None
        return row[0]

    def _lookup(self, key_id: str) -> tuple[str, str, bool, dt.datetime | None, float] | None:
        known = self._known.get(key_id)
        if known and time.monotonic() - known[4] < self.fresh_seconds:  # a store read per request was a third of its cost
            return known
        if time.monotonic() - self._unknown.get(key_id, -math.inf) < self.fresh_seconds:
            return None
        c = api_keys.c
        try:
            with self.engine.connect() as conn:
                q = sa.select(c.partner, c.secret_sha256, c.revoked_at, c.expires_at).where(c.key_id == key_id)
                r = conn.execute(q).first()
        except sa.exc.SQLAlchemyError:
            return known if known and time.monotonic() - known[4] < self.last_known_seconds else None
        if r is None:
            self._known.pop(key_id, None)
            if len(self._unknown) > 100_000:  # a flood of made-up ids must not grow memory without bound
                self._unknown.clear()
            self._unknown[key_id] = time.monotonic()
            return None
        self._unknown.pop(key_id, None)
        self._known[key_id] = (r[0], r[1], r[2] is not None, r[3], time.monotonic())
        return self._known[key_id]
