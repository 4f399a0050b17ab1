"""Schema migrations of the operational store (Alembic): run at service start and by `earlywarn store migrate`."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

MIGRATIONS = Path(__file__).with_name("migrations")
BASELINE = "0001"  # the schema as releases before migrations left it (b9b83e2 and earlier, once their columns are added)
ADVISORY_LOCK = 0x6561726C79  # "early": PostgreSQL replicas starting together migrate one at a time
_lock = threading.Lock()
_migrated: dict[str, MigrateResult] = {}


@dataclass(frozen=True)
class MigrateResult:
    before: str | None  # the store's revision before (None: empty, or written before migrations existed)
    after: str
    adopted: bool  # a store written before migrations existed, brought under them in place


def _config(conn: Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    return cfg


def head() -> str:
    return str(ScriptDirectory(str(MIGRATIONS)).get_current_head())


def _tables() -> sa.MetaData:
    """The store's metadata with every table registered (each concept's module defines its own)."""
    from earlywarn.data.store import (  # noqa: F401
        audit,
        escalations,
        key_fingerprint,
        keys,
        outcomes,
        partner_modes,
        predictions,
        retraining_consent,
        webhooks,
        withdrawals,
    )
    from earlywarn.data.store.base import metadata

    return metadata


def _adopt(conn: Connection) -> None:
    """A store from before migrations: create missing tables and add the nullable columns later releases added, as
    those releases did at start, so it matches the baseline revision."""
    metadata = _tables()
    metadata.create_all(conn)
    inspector = sa.inspect(conn)
    for table in metadata.sorted_tables:
        have = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name not in have and column.nullable:
                kind = column.type.compile(dialect=conn.dialect)
                conn.exec_driver_sql(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}')


@contextlib.contextmanager
def _exclusive(engine: Engine) -> Iterator[Connection]:
    """One migrating process at a time: an advisory lock on PostgreSQL, a lock file beside a SQLite file."""
    lock_path = Path(f"{engine.url.database}.migrate.lock") if engine.dialect.name == "sqlite" and engine.url.database else None
    with contextlib.ExitStack() as stack:
        if lock_path is not None:
            handle = stack.enter_context(open(lock_path, "a"))
            fcntl.flock(handle, fcntl.LOCK_EX)
        conn = stack.enter_context(engine.begin())
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": ADVISORY_LOCK})
        yield conn


def migrate(engine: Engine) -> MigrateResult:
    """Bring the store to the newest revision, in place; once per store and process (later calls return at once)."""
    url = engine.url.render_as_string(hide_password=False)
    if url in _migrated:
        return _migrated[url]
    # Alembic announces its context and every step at INFO; a service start or a CLI command should not print them.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    with _lock, _exclusive(engine) as conn:
        before = MigrationContext.configure(conn).get_current_revision()
        adopted = before is None and bool(set(sa.inspect(conn).get_table_names()) & set(_tables().tables))
        cfg = _config(conn)
        if adopted:
            _adopt(conn)
            command.stamp(cfg, BASELINE)
        command.upgrade(cfg, "head")
        result = MigrateResult(before, str(MigrationContext.configure(conn).get_current_revision()), adopted)
    _migrated[url] = result
    return result
