"""The operational store's schema under Alembic: an old store upgrades in place, a new one matches the tables exactly."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from earlywarn.data import store
from earlywarn.data.pseudonym import Pseudonymizer, SecretError
from earlywarn.data.store.keys import list_keys
from earlywarn.data.store.webhooks import webhook_for
from tests.pg import pg_url, require_postgres, scratch_database

OLD_STORE = Path(__file__).parents[1] / "fixtures" / "store-b9b83e2.sql"  # written by b9b83e2's create_schema and API
OLD_KEY = Pseudonymizer(b"k" * 32)


def _old_store(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        conn.executescript(OLD_STORE.read_text())
    return f"sqlite:///{path}"


def _revision_and_drift(url: str) -> tuple[str | None, list]:
    """The store's revision, and every difference between its tables and the code's (none expected)."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn)
        return context.get_current_revision(), compare_metadata(context, store.metadata)


def _cli_migrate(url: str, home: Path) -> subprocess.CompletedProcess:
    env = os.environ | {"EARLYWARN_DB_URL": url, "EARLYWARN_HOME": str(home), "EARLYWARN_MODE": "demo"}
    earlywarn = str(Path(sys.executable).with_name("earlywarn"))
    return subprocess.run([earlywarn, "store", "migrate"], env=env, capture_output=True, text=True, timeout=120)


def test_a_store_from_the_previous_release_upgrades_in_place_with_the_cli(tmp_path):
    url = _old_store(tmp_path / "old.db")
    assert _revision_and_drift(url)[0] is None
    first = _cli_migrate(url, tmp_path)
    assert first.returncode == 0, first.stderr
    assert f"adopted a store written before migrations; now at revision {store.head()}" in first.stdout
    assert _revision_and_drift(url) == (store.head(), [])
    again = _cli_migrate(url, tmp_path)
    assert again.returncode == 0 and f"already at the newest revision {store.head()}" in again.stdout

    # Everything the old release stored reads back through the new modules.
    engine = store.engine_for(url)
    key = OLD_KEY("acme", "p1")
    predictions = store.read_predictions(engine)
    assert list(predictions["risk"]) == [0.21] and list(predictions["participant_key"]) == [key]
    assert store.read_inputs(engine).shape[0] == 2
    assert store.latest_events(engine, [("acme", key)]) == {("acme", key): dt.date(2026, 11, 30)}
    assert store.latest_episodes(engine, [("acme", key)])[("acme", key)].alert_id == "a1"
    assert [k["partner"] for k in list_keys(engine)] == ["acme"]
    assert webhook_for(engine, "acme").url == "https://care.example.org/hook"
    store.check_key(engine, OLD_KEY)
    with pytest.raises(SecretError):
        store.check_key(engine, Pseudonymizer(b"x" * 32))


def test_an_older_store_gains_the_columns_later_releases_added(tmp_path):
    url = _old_store(tmp_path / "older.db")
    with sqlite3.connect(tmp_path / "older.db") as conn:  # as releases before input logging and key expiry left it
        conn.execute("ALTER TABLE predictions DROP COLUMN inputs")
        conn.execute("ALTER TABLE api_keys DROP COLUMN expires_at")
    assert _revision_and_drift(url)[1]  # the checker sees the missing columns
    result = store.migrate(store.engine_for(url))
    assert result.adopted and result.after == store.head()
    assert _revision_and_drift(url) == (store.head(), [])
    assert store.read_inputs(store.engine_for(url)).empty  # the old row has no window; nothing invented


def test_a_new_sqlite_store_is_created_by_the_migrations_and_matches_the_tables(tmp_path):
    url = f"sqlite:///{tmp_path / 'new.db'}"
    result = store.migrate(store.engine_for(url))
    assert (result.before, result.after, result.adopted) == (None, store.head(), False)
    assert _revision_and_drift(url) == (store.head(), [])


@pytest.mark.postgres
def test_a_new_postgres_store_is_created_by_the_migrations_and_matches_the_tables():
    require_postgres()
    with scratch_database() as name:
        url = pg_url(name)
        engine = store.engine_for(url)
        try:
            assert store.migrate(engine).after == store.head()
            assert _revision_and_drift(url) == (store.head(), [])
        finally:
            engine.dispose()
