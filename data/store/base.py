"""Shared by every table of the operational store: the schema's metadata, engines and the URL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from earlywarn.data import state
from earlywarn.data.settings import secret, settings

metadata = sa.MetaData()


def url_from_env() -> str:
    """EARLYWARN_DB_URL, or a file holding it (EARLYWARN_DB_URL_FILE: a URL with a password never sits in the
    repository or a command line), or the embedded SQLite default."""
    if url := secret(settings().db_url):
        return url
    state.home().mkdir(parents=True, exist_ok=True)  # the embedded default works on a fresh checkout
    return f"sqlite:///{state.path('earlywarn.db')}"


# JSON columns (summaries, input windows) through orjson: the standard encoder re-encoding every flushed record was
# the spool flusher's largest hold on the GIL.
_JSON: dict[str, Any] = {
    "json_serializer": lambda obj: orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY).decode(),
    "json_deserializer": orjson.loads,
}


def engine_for(url: str) -> Engine:
    """An engine with settings that suit a busy service: WAL, a busy timeout and secure delete on SQLite, pre-ping on
    servers."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **_JSON)

        @sa.event.listens_for(engine, "connect")
        def _pragmas(conn: Any, _: Any) -> None:
            cur = conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA secure_delete=ON")  # deleted rows are overwritten, not left readable in free pages
            cur.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5, connect_args={"connect_timeout": 5}, **_JSON)


def as_date(v: Any) -> dt.date:
    return v if isinstance(v, dt.date) else dt.date.fromisoformat(str(v))  # SQLite aggregates hand back strings


def keys_by_partner(pairs: Iterable[tuple[str, str]]) -> dict[str, set[str]]:
    by_partner: dict[str, set[str]] = {}
    for partner, key in pairs:
        by_partner.setdefault(partner, set()).add(key)
    return by_partner


def checkpoint(engine: Engine) -> None:
    """After a delete on SQLite: the WAL still holds the pages as they were before it."""
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
