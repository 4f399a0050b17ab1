"""Ed25519 signatures for models and promotion records: a private key signs (training, promotion), public keys verify
(packaging, serving, loading), and neither is the pseudonymisation secret."""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from earlywarn.data.settings import secret, settings

# Published, like the demo HMAC key: it signs demo models, and production never accepts what it signed.
DEMO_SEED = hashlib.sha256(b"earlywarn demo signing key, published, never for production").digest()
MIN_DISTINCT_BYTES = 16  # a random seed has about 30 of 32; a hand-typed or repeated one far fewer


class SigningError(RuntimeError):
    """A signature is missing, wrong or made with a key this deployment does not trust; or no key is configured."""


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    """Names a key pair by its public half (safe to print and record)."""
    return hashlib.sha256(_raw_public(key)).hexdigest()[:16]


def public_text(key: Ed25519PublicKey) -> str:
    return base64.urlsafe_b64encode(_raw_public(key)).decode()


def _decode(text: str, what: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise SigningError(
            f"{what}: not an Ed25519 key (expected the base64 of 32 bytes; make one with `earlywarn models keygen`)"
        )
    return raw


def parse_private(text: str) -> Ed25519PrivateKey:
    """A PEM private key, or the base64 of a 32-byte seed (what `earlywarn models keygen` writes)."""
    if text.lstrip().startswith("-----BEGIN"):
        loaded = serialization.load_pem_private_key(text.encode(), password=None)
        if not isinstance(loaded, Ed25519PrivateKey):
            raise SigningError("EARLYWARN_SIGNING_KEY: the PEM key is not an Ed25519 key")
        return loaded
    seed = _decode(text, "EARLYWARN_SIGNING_KEY")
    if len(set(seed)) < MIN_DISTINCT_BYTES or seed == DEMO_SEED:
        raise SigningError("EARLYWARN_SIGNING_KEY is too weak to sign models (make one with `earlywarn models keygen`)")
    return Ed25519PrivateKey.from_private_bytes(seed)


@dataclass(frozen=True)
class Keys:
    """This process's signing key (None where it only verifies) and the public keys it trusts, by key id."""

    private: Ed25519PrivateKey | None
    trusted: dict[str, Ed25519PublicKey]

    def sign(self, data: bytes) -> str:
        if self.private is None:
            raise SigningError(
                "EARLYWARN_SIGNING_KEY(_FILE) is not set: training and promotion sign what they make "
                "(make a key with `earlywarn models keygen`; see docs/security.md)"
            )
        return f"{key_id(self.private.public_key())}:{base64.urlsafe_b64encode(self.private.sign(data)).decode()}"

    def verify(self, data: bytes, signature: str, what: str) -> str:
        """The key id that signed `data`, or SigningError naming `what` and why."""
        kid, _, sig = signature.strip().partition(":")
        key = self.trusted.get(kid)
        if key is None:
            known = ", ".join(sorted(self.trusted)) or "none"
            raise SigningError(
                f"{what}: signed with key {kid or '?'}, which this deployment does not trust (trusted: {known}; set "
                "EARLYWARN_VERIFY_KEYS, or a model signed in demo mode is being used in production)"
            )
        try:
            key.verify(base64.urlsafe_b64decode(sig), data)
        except (InvalidSignature, binascii.Error, ValueError):
            raise SigningError(f"{what}: the signature does not match: it was changed after it was signed") from None
        return kid


def keys(demo: bool | None = None) -> Keys:
    """From EARLYWARN_SIGNING_KEY(_FILE) and EARLYWARN_VERIFY_KEYS; in demo mode the published demo key where none is
    set. Production never trusts the demo key."""
    s = settings()
    demo = s.demo if demo is None else demo
    text = secret(s.signing_key)
    private = parse_private(text) if text else (Ed25519PrivateKey.from_private_bytes(DEMO_SEED) if demo else None)
    trusted = [Ed25519PublicKey.from_public_bytes(_decode(t, "EARLYWARN_VERIFY_KEYS")) for t in s.verify_key_list]
    if private is not None:
        trusted.append(private.public_key())
    if not trusted and demo:
        trusted.append(Ed25519PrivateKey.from_private_bytes(DEMO_SEED).public_key())
    demo_id = key_id(Ed25519PrivateKey.from_private_bytes(DEMO_SEED).public_key())
    by_id = {key_id(k): k for k in trusted}
    if not demo:
        by_id.pop(demo_id, None)
        if not by_id:
            raise SigningError(
                "no model verification key: set EARLYWARN_VERIFY_KEYS (the public key `earlywarn models keygen` printed), "
                "or EARLYWARN_SIGNING_KEY where this process signs"
            )
    return Keys(private, by_id)


def keygen() -> tuple[str, str, str]:
    """A new key pair: (private seed as base64, public key as base64, key id)."""
    private = Ed25519PrivateKey.generate()
    seed = private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    return base64.urlsafe_b64encode(seed).decode(), public_text(private.public_key()), key_id(private.public_key())
