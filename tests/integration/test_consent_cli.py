"""`earlywarn participants forget` as a user runs it, on the default SQLite store: it deletes, or refuses loudly."""

from __future__ import annotations

import datetime as dt
import os
import uuid

import pandas as pd
import pytest
from typer.testing import CliRunner

from earlywarn.cli import app
from earlywarn.data import store
from earlywarn.data.pseudonym import Pseudonymizer, SecretError, run_mode
from earlywarn.data.settings import SettingsError
from tests.drill import record

SECRET = "a-real-secret-for-this-test-0123456789"


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("EARLYWARN_HOME", str(tmp_path))
    for var in ("MLFLOW_TRACKING_URI", "EARLYWARN_DB_URL", "EARLYWARN_DB_URL_FILE", "EARLYWARN_ARTIFACT_ROOT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("EARLYWARN_MODE", "production")
    monkeypatch.setenv("EARLYWARN_HMAC_KEY", SECRET)
    return tmp_path


def _outcome(key: str, event: str = "relapse") -> dict:
    return {
        "record_id": str(uuid.uuid4()),
        "created_at": dt.datetime.now(dt.UTC),
        "partner": "acme",
        "participant_key": key,
        "date": dt.date(2025, 3, 1),
        "event": event,
    }


def test_forget_deletes_then_refuses_a_wrong_partner_key_or_mode(home, monkeypatch):
    runner = CliRunner()
    made = runner.invoke(app, ["keys", "create", "--partner", "acme"])
    assert made.exit_code == 0, made.output
    engine = store.engine_for(store.url_from_env())
    assert str(home) in str(engine.url)  # the default store under the state root
    key = Pseudonymizer.from_env()("acme", "person-1")
    store.insert_ignoring_duplicates(engine, "outcomes", [_outcome(key, "hospitalisation_zq7x")])

    done = runner.invoke(app, ["participants", "forget", "--partner", "acme", "--participant", "person-1"])
    assert done.exit_code == 0, done.output
    assert "deleted 0 predictions (with their inputs) and 1 outcomes" in done.output
    assert store.count(engine, "outcomes") == 0
    engine.dispose()
    for path in home.rglob("*"):  # no copy left readable: free pages are zeroed, the WAL is checkpointed and emptied
        assert not path.is_file() or b"hospitalisation_zq7x" not in path.read_bytes(), path

    typo = runner.invoke(app, ["participants", "forget", "--partner", "acmee", "--participant", "person-1"])
    assert typo.exit_code == 1 and "no partner 'acmee'" in typo.output and "Traceback" not in typo.output

    store.insert_ignoring_duplicates(engine, "outcomes", [_outcome(Pseudonymizer.from_env()("acme", "person-2"))])
    monkeypatch.setenv("EARLYWARN_HMAC_KEY", "another-secret-0123456789-abcdef")
    wrong = runner.invoke(app, ["participants", "forget", "--partner", "acme", "--participant", "person-2"])
    assert wrong.exit_code == 1 and "not the one this store's ids were pseudonymised with" in wrong.output
    assert store.count(engine, "outcomes") == 1  # nothing deleted under the wrong key

    monkeypatch.setenv("EARLYWARN_MODE", "prod")
    typo_mode = runner.invoke(app, ["participants", "forget", "--partner", "acme", "--participant", "person-2"])
    assert typo_mode.exit_code == 1 and "EARLYWARN_MODE='prod'" in typo_mode.output
    record(
        "withdrawal CLI: refusals (item 2)",
        "`participants forget` as a user runs it; then a mistyped partner, another HMAC key, EARLYWARN_MODE=prod",
        "deleted, nothing readable left in any file; then exit 1 with one line each, nothing deleted",
    )


def test_forget_of_an_id_that_matches_nobody_fails_and_records_nothing(home):
    """b9b83e2 exited 0 for a typo or another Unicode spelling, recorded a withdrawal of nobody, and kept the person."""
    runner = CliRunner()
    assert runner.invoke(app, ["keys", "create", "--partner", "acme"]).exit_code == 0
    engine = store.engine_for(store.url_from_env())
    composed = "Jos\u00e9"  # é as one code point, as the partner's app sent it
    store.insert_ignoring_duplicates(engine, "outcomes", [_outcome(Pseudonymizer.from_env()("acme", composed))])

    typo = runner.invoke(app, ["participants", "forget", "--partner", "acme", "--participant", "Jose"])
    assert typo.exit_code == 1 and "nothing held for that participant" in typo.output and "--not-yet-seen" in typo.output
    assert "Jose" not in typo.output  # the id is not echoed into terminals and logs
    assert store.read_withdrawals(engine).empty and store.count(engine, "outcomes") == 1

    decomposed = "Jose\u0301 "  # e + combining accent, and a trailing space, as typed at a terminal
    done = runner.invoke(app, ["participants", "forget", "--partner", "acme", "--participant", decomposed])
    assert done.exit_code == 0, done.output
    assert store.count(engine, "outcomes") == 0 and len(store.read_withdrawals(engine)) == 1

    ahead = runner.invoke(app, ["participants", "forget", "--partner", "acme", "--participant", "new-1", "--not-yet-seen"])
    assert ahead.exit_code == 0 and len(store.read_withdrawals(engine)) == 2
    new = ("acme", Pseudonymizer.from_env()("acme", "new-1"))
    assert store.withdrawn(engine, [new]) == {new}


def test_every_change_leaves_an_audit_entry_and_the_chain_verifies(home):
    """b9b83e2 left no record of key, webhook, mode, consent or retention changes (HIPAA 164.312(b))."""
    runner = CliRunner()
    made = runner.invoke(app, ["keys", "create", "--partner", "acme", "--expires", "30d"])
    token = made.output.strip().splitlines()[-1]
    assert runner.invoke(app, ["keys", "webhook", "--partner", "acme", "--url", "https://hooks.example.org/acme"]).exit_code == 2
    engine = store.engine_for(store.url_from_env())
    store.insert_ignoring_duplicates(engine, "outcomes", [_outcome(Pseudonymizer.from_env()("acme", "person-9"))])
    assert runner.invoke(app, ["participants", "forget", "--partner", "acme", "--participant", "person-9"]).exit_code == 0
    assert runner.invoke(app, ["store", "purge"]).exit_code == 0
    assert runner.invoke(app, ["keys", "revoke", "--partner", "acme"]).exit_code == 0
    shown = runner.invoke(app, ["audit", "show", "--verify"])
    assert shown.exit_code == 0 and "chain intact: 4 entries" in shown.output, shown.output
    actions = [e.action for e in store.audit.entries(engine)]
    assert actions == ["key.create", "participant.forget", "store.purge", "key.revoke"]  # the refused webhook: none
    assert "person-9" not in shown.output and token.split("_")[-1] not in shown.output
    assert Pseudonymizer.from_env()("acme", "person-9") not in shown.output  # not even the pseudonym
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE audit_log SET actor = 'someone else' WHERE seq = 2")
    broken = runner.invoke(app, ["audit", "show", "--verify"])
    assert broken.exit_code == 1 and "entry 2 was changed after it was written" in broken.output


@pytest.mark.parametrize("value", ["prod", "Production", "demo ", "staging"])
def test_any_mode_but_production_or_demo_is_refused(monkeypatch, value):
    monkeypatch.setenv("EARLYWARN_MODE", value)
    with pytest.raises(SettingsError, match="EARLYWARN_MODE"):
        run_mode()


def test_production_is_the_default_and_needs_a_secret(monkeypatch):
    monkeypatch.delenv("EARLYWARN_MODE", raising=False)
    monkeypatch.delenv("EARLYWARN_HMAC_KEY", raising=False)
    monkeypatch.delenv("EARLYWARN_HMAC_KEY_FILE", raising=False)
    assert run_mode() == "production"
    with pytest.raises(SecretError, match="EARLYWARN_HMAC_KEY"):
        Pseudonymizer.from_env()
    record(
        "fail closed (item 1)", "EARLYWARN_MODE unset, no secret", "production mode; pseudonymising refused, naming the variable"
    )


def test_the_demo_refuses_to_start_in_production(home):
    out = CliRunner().invoke(app, ["run"])
    assert out.exit_code == 1 and "EARLYWARN_MODE=demo" in out.output
    out = CliRunner().invoke(app, ["serve", "--demo"])
    assert out.exit_code == 1 and "--demo mints a demo partner key; it needs EARLYWARN_MODE=demo" in out.output


@pytest.mark.parametrize("name", ["асме", "Acme", "bad name!", "-acme", "", "a" * 65, "acme\n"])
def test_partner_names_are_plain_ascii(tmp_path, name):
    from earlywarn.data.store.keys import create_key

    engine = store.engine_for(f"sqlite:///{tmp_path / 'k.db'}")
    with pytest.raises(ValueError, match="lowercase ASCII"):
        create_key(engine, name)
    assert create_key(engine, "clinic-east_2").partner == "clinic-east_2"


def test_the_cli_creates_private_files(tmp_path):
    """Run as users run it (a real process): the store it creates is readable by its owner only."""
    import os
    import stat
    import subprocess
    import sys
    from pathlib import Path

    env = os.environ | {"EARLYWARN_HOME": str(tmp_path / "home"), "EARLYWARN_MODE": "production", "EARLYWARN_HMAC_KEY": SECRET}
    env.pop("EARLYWARN_DB_URL", None)
    cli = Path(sys.executable).with_name("earlywarn")
    made = subprocess.run([str(cli), "keys", "create", "--partner", "acme"], env=env, capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    created = list((tmp_path / "home").rglob("*"))
    assert created
    for path in [tmp_path / "home", *created]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o077 == 0, (path, oct(mode))
    record(
        "private files (item 5)",
        "`earlywarn keys create` run as a process",
        f"{len(created)} files and folders, none readable by others",
    )


def test_store_purge_keeps_the_retention_period(home, monkeypatch):
    engine = store.engine_for(store.url_from_env())
    store.migrate(engine)
    old = _outcome("k-old") | {"created_at": dt.datetime.now(dt.UTC) - dt.timedelta(days=401)}
    store.insert_ignoring_duplicates(engine, "outcomes", [old, _outcome("k-new")])
    # Copies beyond the store (b9b83e2 left them): a retrain snapshot and a monitoring report.
    today = dt.date.today()
    snapshot = home / "retrain" / "20260101T000000" / "features.parquet"
    snapshot.parent.mkdir(parents=True)
    days = [today - dt.timedelta(days=420), today - dt.timedelta(days=10)]
    pd.DataFrame(
        {"participant_id": ["acme:k-old", "acme:k-old", "P001", "P001"], "date": pd.to_datetime(days * 2), "steps": 1.0}
    ).to_parquet(snapshot, index=False)
    report = home / "monitoring" / "reports" / "old-drift.html"
    report.parent.mkdir(parents=True)
    report.write_text("<html>")
    ancient = (dt.datetime.now() - dt.timedelta(days=401)).timestamp()
    os.utime(report, (ancient, ancient))
    out = CliRunner().invoke(app, ["store", "purge"])
    assert out.exit_code == 0 and "kept 400 days; deleted 0 predictions, 1 outcomes" in out.output, out.output
    assert "2 files under the state root and 0 MLflow reference samples rewritten or deleted" in out.output, out.output
    assert store.read_outcomes(engine)["participant_key"].tolist() == ["k-new"]
    kept = pd.read_parquet(snapshot)
    assert kept["participant_id"].tolist() == ["acme:k-old", "P001", "P001"]  # the old logged day only: not the cohort's
    assert kept["date"].min().date() == days[0] and kept.loc[0, "date"].date() == days[1] and not report.exists()
    monkeypatch.setenv("EARLYWARN_RETENTION_DAYS", "0")
    refused = CliRunner().invoke(app, ["store", "purge"])
    assert refused.exit_code == 1 and "EARLYWARN_RETENTION_DAYS='0'" in refused.output
    record("retention (item 4)", "`store purge` with outcomes 401 days and 0 days old", "the old one deleted, the new kept")


def test_keys_can_expire_and_bad_input_gets_one_line(home):
    runner = CliRunner()
    made = runner.invoke(app, ["keys", "create", "--partner", "acme", "--expires", "90d"])
    assert made.exit_code == 0, made.output
    listed = runner.invoke(app, ["keys", "list"])
    assert listed.exit_code == 0 and "active, expires " in listed.output
    from earlywarn.data.store.keys import key_state, list_keys

    (key,) = list_keys(store.engine_for(store.url_from_env()))
    assert 89 <= (key["expires_at"] - key["created_at"]).days <= 90
    later = key["expires_at"].replace(tzinfo=dt.UTC) + dt.timedelta(seconds=1)
    assert key_state(key, later).startswith("expired ")  # b9b83e2 listed an expired key as `active`
    bad = runner.invoke(app, ["keys", "create", "--partner", "acme", "--expires", "soon"])
    assert bad.exit_code == 2 and "--expires" in bad.output
    lookalike = runner.invoke(app, ["keys", "create", "--partner", "асме"])
    assert lookalike.exit_code == 2 and "lowercase ASCII" in lookalike.output and "Traceback" not in lookalike.output


def test_rotating_the_pseudonymisation_secret_keeps_everyones_history_and_withdrawals(home, monkeypatch):
    """docs/security.md's rotation, run as written: the store, a retrain snapshot and a withdrawal move to the new
    secret; a list that leaves out a withdrawn person is refused with nothing changed."""
    from earlywarn.data.store.rekey import RekeyError

    runner = CliRunner()
    assert runner.invoke(app, ["keys", "create", "--partner", "acme"]).exit_code == 0
    engine = store.engine_for(store.url_from_env())
    old, new = Pseudonymizer(SECRET.encode()), Pseudonymizer(b"the-rotated-secret-9f8e7d6c5b4a3210")
    store.insert_ignoring_duplicates(engine, "outcomes", [_outcome(old("acme", p)) for p in ("person-1", "person-2")])
    withdrawn = runner.invoke(app, ["participants", "forget", "--partner", "acme", "--participant", "person-3", "--not-yet-seen"])
    assert withdrawn.exit_code == 0, withdrawn.output
    snapshot = home / "retrain" / "snapshot" / "features.parquet"
    snapshot.parent.mkdir(parents=True)
    pd.DataFrame({"participant_id": [f"acme:{old('acme', 'person-1')}"], "steps": [5000.0]}).to_parquet(snapshot)

    monkeypatch.setenv("EARLYWARN_HMAC_KEY_PREVIOUS", SECRET)
    monkeypatch.setenv("EARLYWARN_HMAC_KEY", new.key.decode())
    ids = home / "ids.csv"
    pd.DataFrame({"partner": "acme", "participant_id": ["person-1", "person-2"]}).to_csv(ids, index=False)
    partial = runner.invoke(app, ["store", "rekey", "--ids", str(ids)])
    assert isinstance(partial.exception, RekeyError) and "1 withdrawn people are not in the id list" in str(partial.exception)
    assert set(store.read_outcomes(engine)["participant_key"]) == {old("acme", "person-1"), old("acme", "person-2")}
    assert pd.read_parquet(snapshot)["participant_id"].iloc[0] == f"acme:{old('acme', 'person-1')}"

    pd.DataFrame({"partner": "acme", "participant_id": ["person-1", "person-2", "person-3"]}).to_csv(ids, index=False)
    done = runner.invoke(app, ["store", "rekey", "--ids", str(ids)])
    assert done.exit_code == 0, done.output
    assert "re-keyed 3 listed participants (2 outcomes, 1 withdrawals)" in done.output
    assert set(store.read_outcomes(engine)["participant_key"]) == {new("acme", "person-1"), new("acme", "person-2")}
    assert pd.read_parquet(snapshot)["participant_id"].iloc[0] == f"acme:{new('acme', 'person-1')}"
    assert store.withdrawn(engine, [("acme", new("acme", "person-3"))])  # still withdrawn under the new secret
    monkeypatch.delenv("EARLYWARN_HMAC_KEY_PREVIOUS")
    forget = runner.invoke(app, ["participants", "forget", "--partner", "acme", "--participant", "person-1"])
    assert forget.exit_code == 0 and "1 outcomes" in forget.output, forget.output  # found under the new secret
    monkeypatch.setenv("EARLYWARN_HMAC_KEY", SECRET)
    stale = runner.invoke(app, ["participants", "forget", "--partner", "acme", "--participant", "person-2"])
    assert stale.exit_code == 1 and "not the one this store's ids were pseudonymised with" in stale.output
    record(
        "pseudonymisation secret rotated",
        "`store rekey` with a list missing a withdrawn person, then the full list; then the old secret",
        "refused with nothing changed; then store, snapshot and withdrawal re-keyed, history found; old secret refused",
    )
