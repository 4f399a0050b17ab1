"""Per-partner limits: shared by replicas through Redis, counted in memory while Redis is away."""

from __future__ import annotations

import uuid

import httpx
import limits
import pandas as pd
import pytest

from bench.launcher import Server
from earlywarn.data import store
from earlywarn.data.store.keys import create_key
from earlywarn.serving.ratelimit import Limiter
from tests.stack import risk_request

REDIS = "redis://127.0.0.1:6379/0"


def _redis_or_skip() -> None:
    import redis

    try:
        redis.Redis.from_url(REDIS, socket_timeout=1).ping()
    except redis.RedisError as err:
        pytest.skip(f"Redis is not reachable at {REDIS} ({type(err).__name__}); the shared limits need it")


def test_a_cost_counts_against_the_limit_in_memory():
    limiter = Limiter(None)
    rate = limits.parse("100/minute")
    assert limiter.hit(rate, "days:acme", cost=84) and not limiter.hit(rate, "days:acme", cost=84)
    assert limiter.hit(rate, "days:beta", cost=84) and not limiter.shared


def test_two_limiters_on_one_redis_share_a_partners_limit():
    _redis_or_skip()
    prefix = f"earlywarn-test-{uuid.uuid4().hex[:8]}"
    a, b = Limiter(REDIS, prefix), Limiter(REDIS, prefix)
    rate = limits.parse("5/minute")
    answers = [(a if i % 2 else b).hit(rate, "requests:acme") for i in range(8)]
    assert answers == [True] * 5 + [False] * 3 and a.shared and b.shared
    assert Limiter(REDIS, prefix + "-other").hit(rate, "requests:acme")  # another deployment's prefix counts apart


def test_without_redis_a_replica_counts_alone_and_tries_again_later(caplog):
    limiter = Limiter("redis://127.0.0.1:1/0", retry_seconds=60)  # nothing listens on port 1
    rate = limits.parse("2/minute")
    assert [limiter.hit(rate, "requests:acme") for _ in range(3)] == [True, True, False]
    assert not limiter.shared and "counting in memory" in caplog.text


@pytest.mark.slow
def test_two_replicas_sharing_one_redis_hold_one_partners_limit(served_model, small_cohort, tmp_path):
    _redis_or_skip()
    table = pd.read_parquet(small_cohort.features_path)
    body = risk_request(table, sorted(table["participant_id"].unique())[:1], "rl-", ["mood_ema"])
    db = f"sqlite:///{tmp_path / 'log.db'}"
    key = create_key(store.engine_for(db), "acme").token
    base = {k: v for k, v in served_model.items() if not k.startswith("_")} | {
        "EARLYWARN_DB_URL": db,
        "EARLYWARN_REDIS_URL": REDIS,
        "EARLYWARN_REDIS_PREFIX": f"earlywarn-test-{uuid.uuid4().hex[:8]}",
        "EARLYWARN_RATE_LIMIT": "6/minute",
    }
    replicas = [
        Server(base | {"EARLYWARN_SPOOL_DIR": str(tmp_path / f"spool{i}")}, tmp_path / f"r{i}.log").start() for i in range(2)
    ]
    try:
        codes = [
            httpx.post(
                f"{replicas[i % 2].url}/v1/risk-scores", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=60
            ).status_code
            for i in range(10)
        ]
    finally:
        for s in replicas:
            s.stop()
    # Alone, each replica would have let 6 through (12 in all); together they let the partner's 6 through.
    assert codes == [200] * 6 + [429] * 4, codes
