"""The store is taken away mid-traffic: the service keeps answering, spools, and every record lands exactly once."""

from __future__ import annotations

import time
import uuid

import httpx
import pandas as pd
import psycopg
import pytest
import sqlalchemy as sa

from bench.launcher import Server
from earlywarn.data import store
from earlywarn.data.store.keys import create_key
from tests.pg import PG_HOST, PG_USER, require_postgres, scratch_database
from tests.stack import risk_request

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def _admin(sql: str) -> None:
    with psycopg.connect(f"host={PG_HOST} port=5432 user={PG_USER} dbname=test", autocommit=True) as conn:
        conn.execute(sql)


def test_postgres_outage_spools_and_replays_exactly_once(served_model, small_cohort, tmp_path):
    require_postgres()
    role = f"ew_drill_{uuid.uuid4().hex[:8]}"
    table = pd.read_parquet(small_cohort.features_path)
    people = sorted(table["participant_id"].unique())[:2]
    body = risk_request(table, people, "drill-", ["steps"])
    with scratch_database() as db:
        _admin(f'CREATE ROLE "{role}" LOGIN')
        _admin(f'ALTER DATABASE "{db}" OWNER TO "{role}"')
        url = f"postgresql+psycopg://{role}@{PG_HOST}:5432/{db}"
        engine = store.engine_for(url)
        store.migrate(engine)
        key = create_key(engine, "acme").token
        env = {k: v for k, v in served_model.items() if not k.startswith("_")} | {
            "EARLYWARN_DB_URL": url,
            "EARLYWARN_SPOOL_DIR": str(tmp_path / "spool"),
        }
        srv = Server(env, tmp_path / "server.log").start()
        statuses, request_ids = [], []
        try:
            with httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:

                def burst(n: int) -> None:
                    for _ in range(n):
                        r = client.post("/v1/risk-scores", json=body)
                        statuses.append(r.status_code)
                        if r.status_code == 200:
                            request_ids.append(r.json()["request_id"])

                burst(60)
                _admin(f'ALTER ROLE "{role}" NOLOGIN')
                _admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'")
                burst(60)
                time.sleep(1.0)
                during = client.get("/v1/status").json()
                assert during["spool_backlog_bytes"] > 0 and during["store_errors"] > 0, (during, statuses[60:])
                _admin(f'ALTER ROLE "{role}" LOGIN')
                burst(60)
                deadline = time.time() + 60
                while client.get("/v1/status").json()["spool_backlog_bytes"] > 0 and time.time() < deadline:
                    time.sleep(0.5)
            assert statuses == [200] * 180
            with engine.connect() as conn:
                rows = pd.DataFrame(conn.execute(sa.text("select record_id, request_id from predictions")).mappings().all())
            assert len(rows) == 360 and rows["record_id"].is_unique
            assert rows.groupby("request_id").size().eq(2).all() and set(rows["request_id"]) == set(request_ids)
        finally:
            srv.stop()
            engine.dispose()
            _admin(f'ALTER ROLE "{role}" LOGIN')
    _admin(f'DROP ROLE IF EXISTS "{role}"')
