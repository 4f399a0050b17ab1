"""PostgreSQL helpers for tests: reachability check and throwaway databases on the local server."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import pytest

PG_HOST = os.environ.get("EARLYWARN_TEST_PG_HOST", "127.0.0.1")
PG_USER = os.environ.get("EARLYWARN_TEST_PG_USER", "postgres")


def pg_url(database: str = "test", driver: str = "postgresql+psycopg") -> str:
    return f"{driver}://{PG_USER}@{PG_HOST}:5432/{database}"


def require_postgres() -> None:
    try:
        import psycopg

        with psycopg.connect(f"host={PG_HOST} port=5432 user={PG_USER} dbname=test", connect_timeout=3):
            pass
    except Exception as err:
        pytest.skip(f"PostgreSQL not reachable on {PG_HOST}:5432 as {PG_USER} (database test): {err}")


@contextlib.contextmanager
def scratch_database() -> Iterator[str]:
    """A fresh database, dropped afterwards; yields its name."""
    import psycopg

    name = f"earlywarn_{uuid.uuid4().hex[:10]}"
    dsn = f"host={PG_HOST} port=5432 user={PG_USER} dbname=test"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
