"""Two service replicas behind one PostgreSQL prediction log: nothing lost, nothing duplicated."""

from __future__ import annotations

import concurrent.futures as cf

import httpx
import pandas as pd
import pytest
import sqlalchemy as sa

from bench.launcher import Server
from earlywarn.data import store
from earlywarn.data.store.keys import create_key
from tests.pg import pg_url, require_postgres, scratch_database
from tests.stack import risk_request

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def test_two_replicas_share_one_postgres_log_exactly_once(served_model, small_cohort, tmp_path):
    require_postgres()
    table = pd.read_parquet(small_cohort.features_path)
    people = sorted(table["participant_id"].unique())[:4]
    body = risk_request(table, people, "r-", ["mood_ema"])
    with scratch_database() as db:
        url = pg_url(db)
        engine = store.engine_for(url)
        store.migrate(engine)
        key = create_key(engine, "acme").token
        base = {k: v for k, v in served_model.items() if not k.startswith("_")} | {"EARLYWARN_DB_URL": url}
        replicas = [
            Server(base | {"EARLYWARN_SPOOL_DIR": str(tmp_path / f"spool{i}")}, tmp_path / f"r{i}.log").start() for i in range(2)
        ]
        try:

            def send(i: int) -> tuple[int, str]:
                r = httpx.post(
                    f"{replicas[i % 2].url}/v1/risk-scores", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=60
                )
                return r.status_code, r.json().get("request_id", "")

            with cf.ThreadPoolExecutor(8) as pool:
                answers = list(pool.map(send, range(120)))
        finally:
            for s in replicas:
                s.stop()  # at once, SIGTERM: each replica drains its spool into the store on the way out
        assert all(code == 200 for code, _ in answers)
        with engine.connect() as conn:
            per_request = dict(conn.execute(sa.text("select request_id, count(*) from predictions group by request_id")).all())
        assert len(per_request) == 120 and set(per_request.values()) == {len(people)}
        assert set(per_request) == {rid for _, rid in answers}
        engine.dispose()
