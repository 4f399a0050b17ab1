"""One typed settings object: bad values stop a process naming the variable; the docs list exactly its variables."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from earlywarn.data.settings import Settings, SettingsError, markdown_table, settings, var

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ("data", "training", "serving", "monitoring", "earlywarn")


def test_docs_list_exactly_the_settings():
    doc = (ROOT / "docs" / "configuration.md").read_text()
    block = doc.split("<!-- settings -->")[1].split("<!-- /settings -->")[0].strip()
    assert block == markdown_table(), "docs/configuration.md is stale: python -m earlywarn.data.settings docs/configuration.md"


def test_no_code_reads_an_earlywarn_variable_outside_the_settings():
    known = {var(name) for name in Settings.model_fields}
    named = {
        (m, str(path.relative_to(ROOT)))
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        for m in re.findall(r"EARLYWARN_[A-Z_]*[A-Z]", path.read_text())
    }
    assert not {(m, where) for m, where in named if m not in known}


def test_values_are_typed_and_secret_files_are_read(monkeypatch, tmp_path):
    (tmp_path / "key").write_text("a-long-enough-secret-value\n")
    (tmp_path / "key").chmod(0o600)
    monkeypatch.setenv("EARLYWARN_HMAC_KEY_FILE", str(tmp_path / "key"))
    monkeypatch.setenv("EARLYWARN_SPOOL_FSYNC", "true")
    monkeypatch.setenv("EARLYWARN_QUEUE_LIMIT", "50")
    monkeypatch.setenv("EARLYWARN_SPOOL_DIR", "")  # empty counts as unset
    s = settings()
    assert s.hmac_key is not None and s.hmac_key.get_secret_value() == "a-long-enough-secret-value"
    assert "a-long-enough" not in repr(s) and s.spool_fsync is True and s.queue_limit == 50 and s.spool_dir is None


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("EARLYWARN_SPOOL_FSYNC", "maybe", "EARLYWARN_SPOOL_FSYNC='maybe': Input should be a valid boolean"),
        ("EARLYWARN_MODE", "Production", "EARLYWARN_MODE='Production'"),
        ("EARLYWARN_QUEUE_LIMIT", "lots", "EARLYWARN_QUEUE_LIMIT='lots'"),
        ("EARLYWARN_RATE_LIMIT", "250 a second", "EARLYWARN_RATE_LIMIT='250 a second': use the `limits` notation"),
        ("EARLYWARN_RETENTION_DAYS", "0", "EARLYWARN_RETENTION_DAYS='0'"),
        ("EARLYWARN_DB_URL_FILE", "/nonexistent/db-url", "EARLYWARN_DB_URL_FILE='/nonexistent/db-url'"),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable(monkeypatch, variable, value, says):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=re.escape(says)):
        settings()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("EARLYWARN_OPS_TOKEN", "42"),  # found in 43 guesses on b9b83e2
        ("EARLYWARN_HMAC_KEY", "a" * 16),  # 16 characters of one letter were accepted
        ("EARLYWARN_HMAC_KEY", "passwordpassword"),
    ],
)
def test_a_weak_secret_is_refused_without_showing_it(monkeypatch, variable, value):
    monkeypatch.setenv("EARLYWARN_MODE", "production")
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=f"{variable} is too weak") as err:
        settings()
    assert value not in str(err.value) and "token_urlsafe" in str(err.value)


def test_a_secret_file_others_can_read_is_refused(monkeypatch, tmp_path):
    key = tmp_path / "key"
    key.write_text("Zq8-strong-enough-secret-4f1Xw9")
    monkeypatch.setenv("EARLYWARN_HMAC_KEY_FILE", str(key))
    for mode in (0o644, 0o640):
        key.chmod(mode)
        with pytest.raises(SettingsError, match="readable by group or others; chmod 600"):
            settings()
    key.chmod(0o600)
    assert settings().hmac_key is not None


def test_a_secret_and_its_file_together_are_refused_without_showing_the_secret(monkeypatch, tmp_path):
    (tmp_path / "token").write_text("from-the-file")
    monkeypatch.setenv("EARLYWARN_OPS_TOKEN", "the-token-itself")
    monkeypatch.setenv("EARLYWARN_OPS_TOKEN_FILE", str(tmp_path / "token"))
    with pytest.raises(SettingsError, match="EARLYWARN_OPS_TOKEN and EARLYWARN_OPS_TOKEN_FILE are both set") as err:
        settings()
    assert "the-token-itself" not in str(err.value) and "from-the-file" not in str(err.value)


def test_the_cli_stops_before_running_anything_on_a_bad_value(tmp_path):
    env = os.environ | {"EARLYWARN_HOME": str(tmp_path / "state"), "EARLYWARN_SPOOL_FSYNC": "maybe"}
    run = subprocess.run(
        [str(Path(sys.executable).with_name("earlywarn")), "keys", "list"], env=env, capture_output=True, text=True
    )
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.strip().splitlines() == [
        "error: EARLYWARN_SPOOL_FSYNC='maybe': Input should be a valid boolean, unable to interpret input"
    ]
    assert not (tmp_path / "state").exists()
