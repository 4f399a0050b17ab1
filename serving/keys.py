"""Verifies partner keys on every request, with the last known state of a key kept for store outages."""

from __future__ import annotations

import hmac

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from data.keys import DUMMY_DIGEST, PREFIX, api_keys, digest
from data.prediction_log import create_schema


class KeyVerifier:
    """Looks each key up in the store (so revocation takes effect at once) and falls back to the last known
    state of that key while the store is unreachable, so an outage does not lock partners out."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._known: dict[str, tuple[str, str, bool]] = {}
        create_schema(engine)

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
