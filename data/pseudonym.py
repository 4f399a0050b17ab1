"""Keyed pseudonyms for participant ids: HMAC-SHA256 over partner and id, so raw ids are never stored."""

from __future__ import annotations

import hashlib
import hmac
import unicodedata
from dataclasses import dataclass

from earlywarn.data.settings import secret, settings

DEMO_KEY = "earlywarn-demo-key-not-secret"
MODES = ("production", "demo")


def run_mode() -> str:
    """EARLYWARN_MODE: `production` (the default: a real secret is required) or `demo`; any other value (`prod`,
    `Production`, ...) is an error (`SettingsError`), so a typo can never fall back to the published demo key."""
    return settings().mode


def normal_id(participant_id: str) -> str:
    """One spelling per id wherever ids enter (API, outcomes, files, `forget`): Unicode NFC, outer spaces trimmed, so
    "José" typed with a combining accent is the same person as the precomposed one."""
    return unicodedata.normalize("NFC", participant_id).strip()


class SecretError(RuntimeError):
    """A required secret is missing, or the demo secret is used outside demo mode."""


@dataclass(frozen=True)
class Pseudonymizer:
    """Maps (partner, participant id) to a stable pseudonym; the same person at two partners gets unlinkable keys."""

    key: bytes

    def __call__(self, partner: str, participant_id: str) -> str:
        msg = f"{partner}\x1f{normal_id(participant_id)}".encode()
        return hmac.new(self.key, msg, hashlib.sha256).hexdigest()[:40]

    @property
    def fingerprint(self) -> str:
        """Names the key without revealing it: recorded in the store, so a different key is refused."""
        return hmac.new(self.key, b"earlywarn key fingerprint", hashlib.sha256).hexdigest()[:16]

    def derived(self, purpose: bytes) -> bytes:
        """A key for another purpose (signing models) from the one deployment secret, unrelated to the pseudonyms."""
        return hmac.new(self.key, b"earlywarn derived key\x1f" + purpose, hashlib.sha256).digest()

    def row_tag(self, source_id: str) -> str:
        """Names a training participant's rows in saved samples (reference samples), so a withdrawal can find them;
        keyed, so the tag does not reveal the id."""
        return hmac.new(self.derived(b"row tag"), source_id.encode(), hashlib.sha256).hexdigest()[:32]

    @classmethod
    def from_env(cls, demo: bool | None = None) -> Pseudonymizer:
        """EARLYWARN_HMAC_KEY or EARLYWARN_HMAC_KEY_FILE; the demo key only in demo mode (default: EARLYWARN_MODE)."""
        if demo is None:
            demo = run_mode() == "demo"
        key = secret(settings().hmac_key)
        if not key:
            if not demo:
                raise SecretError("EARLYWARN_HMAC_KEY or EARLYWARN_HMAC_KEY_FILE must be set outside demo mode")
            key = DEMO_KEY
        if key == DEMO_KEY and not demo:
            raise SecretError("refusing to run in production mode with the demo HMAC key")
        if len(key) < 16 and not demo:
            raise SecretError("the HMAC key must be at least 16 characters")
        return cls(key.encode())

    @classmethod
    def previous_from_env(cls) -> Pseudonymizer:
        """EARLYWARN_HMAC_KEY_PREVIOUS(_FILE): the secret a rotation moves away from (`earlywarn store rekey`)."""
        key = secret(settings().hmac_key_previous)
        if not key:
            raise SecretError("EARLYWARN_HMAC_KEY_PREVIOUS or its _FILE must hold the secret being rotated away from")
        return cls(key.encode())
