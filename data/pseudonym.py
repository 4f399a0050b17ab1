"""Keyed pseudonyms for participant ids: HMAC-SHA256 over partner and id, so raw ids are never stored."""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass
from pathlib import Path

DEMO_KEY = "earlywarn-demo-key-not-secret"


class SecretError(RuntimeError):
    """A required secret is missing, or the demo secret is used outside demo mode."""


@dataclass(frozen=True)
class Pseudonymizer:
    """Maps (partner, participant id) to a stable pseudonym; the same person at two partners gets unlinkable keys."""

    key: bytes

    def __call__(self, partner: str, participant_id: str) -> str:
        msg = f"{partner}\x1f{participant_id}".encode()
        return hmac.new(self.key, msg, hashlib.sha256).hexdigest()[:40]

    @classmethod
    def from_env(cls, demo: bool) -> Pseudonymizer:
        """EARLYWARN_HMAC_KEY or EARLYWARN_HMAC_KEY_FILE; the demo key only in demo mode."""
        key = os.environ.get("EARLYWARN_HMAC_KEY")
        path = os.environ.get("EARLYWARN_HMAC_KEY_FILE")
        if not key and path:
            key = Path(path).read_text().strip()
        if not key:
            if not demo:
                raise SecretError("EARLYWARN_HMAC_KEY or EARLYWARN_HMAC_KEY_FILE must be set outside demo mode")
            key = DEMO_KEY
        if key == DEMO_KEY and not demo:
            raise SecretError("refusing to run in production mode with the demo HMAC key")
        if len(key) < 16 and not demo:
            raise SecretError("the HMAC key must be at least 16 characters")
        return cls(key.encode())
