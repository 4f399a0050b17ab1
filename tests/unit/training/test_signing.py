"""Model-signing keys: made by `earlywarn models keygen`, refused when weak, and rotated without a gap."""

from __future__ import annotations

import base64
import stat

import pytest
from typer.testing import CliRunner

from earlywarn.training.signing import SigningError, keygen, keys, parse_private


def test_keygen_writes_a_private_file_and_prints_the_public_key(tmp_path):
    from earlywarn.cli import app

    out = tmp_path / "signing.key"
    made = CliRunner().invoke(app, ["models", "keygen", "--out", str(out)])
    assert made.exit_code == 0, made.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    public = made.output.strip().splitlines()[-1]
    assert parse_private(out.read_text()).public_key() is not None and len(base64.urlsafe_b64decode(public)) == 32
    again = CliRunner().invoke(app, ["models", "keygen", "--out", str(out)])
    assert again.exit_code != 0  # a key file is never overwritten


def test_a_weak_or_malformed_signing_key_is_refused():
    with pytest.raises(SigningError, match="too weak"):
        parse_private(base64.urlsafe_b64encode(b"a" * 32).decode())
    with pytest.raises(SigningError, match="not an Ed25519 key"):
        parse_private("correct horse battery staple")


def test_rotating_the_signing_key_keeps_old_models_loading_while_both_are_trusted(monkeypatch):
    old_seed, old_public, old_id = keygen()
    new_seed, new_public, _ = keygen()
    monkeypatch.setenv("EARLYWARN_MODE", "production")
    monkeypatch.setenv("EARLYWARN_SIGNING_KEY", old_seed)
    signed_before = keys().sign(b"manifest")
    monkeypatch.setenv("EARLYWARN_SIGNING_KEY", new_seed)  # step 1: sign with the new key, trust both
    monkeypatch.setenv("EARLYWARN_VERIFY_KEYS", f"{new_public},{old_public}")
    assert keys().verify(b"manifest", signed_before, "old model") == old_id
    signed_after = keys().sign(b"manifest")
    monkeypatch.delenv("EARLYWARN_SIGNING_KEY")  # step 2: once nothing served is signed by the old key, drop it
    monkeypatch.setenv("EARLYWARN_VERIFY_KEYS", new_public)
    assert keys().verify(b"manifest", signed_after, "new model")
    with pytest.raises(SigningError, match="does not trust"):
        keys().verify(b"manifest", signed_before, "old model")
