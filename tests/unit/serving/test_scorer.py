"""The service's scoring workflow as a plain class: built from a tiny bundle, a SQLite store and a spool, no BentoML."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from earlywarn.data import store
from earlywarn.data.pseudonym import Pseudonymizer
from earlywarn.data.spool import Spool
from earlywarn.data.windows import WindowConfig
from earlywarn.serving.scorer import ScoreJob, Scorer
from earlywarn.serving.store_view import StoreView
from earlywarn.training.bundle import ModelBundle
from earlywarn.training.calibration import Bands, Calibration
from earlywarn.training.nets import build_net
from earlywarn.training.preprocess import Preprocessor

FEATURES = ["steps", "sleep_duration_h"]
AS_OF = dt.date(2025, 6, 30)


def _bundle(high: float) -> ModelBundle:
    rng = np.random.default_rng(0)
    rows = np.column_stack([rng.normal(8000, 2000, 500), rng.normal(7, 1, 500)]).astype(np.float32)
    window = WindowConfig(lookback=14, min_observed_days=7, washout_days=28, baseline_days=30)
    pre = Preprocessor.fit(rows, FEATURES, window.lookback, baseline_days=window.baseline_days)
    net = build_net("additive", len(FEATURES), window.lookback, {})
    return ModelBundle("additive", {}, pre, Calibration.identity(FEATURES), Bands(high / 2, high, 0.05, 0.15), window, net)


def _days(n: int = 44) -> list[tuple[dt.date, list[float | None]]]:
    return [(AS_OF - dt.timedelta(days=n - 1 - i), [8000.0 + 10 * i, 7.0]) for i in range(n)]


@pytest.fixture
def built(tmp_path: Path):
    """(scorer, engine, spool, wake-ups, pseudonym): everyone scores high, so escalation can be seen."""
    engine = store.engine_for(f"sqlite:///{tmp_path / 'store.db'}")
    store.migrate(engine)
    spool = Spool(tmp_path / "spool", lambda t, r: store.insert_ignoring_duplicates(engine, t, r))
    woken: list[int] = []
    pseudonym = Pseudonymizer(b"k" * 32)
    scorer = Scorer(_bundle(high=1e-6), "7", pseudonym, StoreView(engine, spool), lambda: woken.append(1))
    yield scorer, engine, spool, woken, pseudonym
    spool.close(timeout=5)


def _job(*ids: str, day: dt.date = AS_OF) -> ScoreJob:
    return ScoreJob([(pid, _days()) for pid in ids], day, "acme", "req-1", explain=True)


def test_a_pass_answers_each_job_and_logs_every_scored_participant_under_a_pseudonym(built):
    scorer, engine, spool, _, pseudonym = built
    first, second = scorer.score_jobs([_job("p1", "p2"), _job("p3")])
    assert isinstance(first, list) and isinstance(second, list)
    assert [r["participant_id"] for r in first + second] == ["p1", "p2", "p3"]
    assert all(r["status"] == "scored" and r["band"] == "high" for r in first + second)
    spool.flush()
    logged = store.read_predictions(engine)
    assert sorted(logged["participant_key"]) == sorted(pseudonym("acme", p) for p in ("p1", "p2", "p3"))
    assert not {"p1", "p2", "p3"} & set(logged["participant_key"])
    assert set(logged["model_version"]) == {"7"}


def _queued(engine) -> list[tuple[str, str, str]]:
    return [(d["partner"], d["event"], d["participant_key"]) for d in store.read_deliveries(engine)]


def test_the_first_high_score_opens_one_episode_and_queues_one_notification(built):
    scorer, engine, _, woken, pseudonym = built
    [opened] = scorer.score_jobs([_job("p1")])
    [again] = scorer.score_jobs([_job("p1", day=AS_OF + dt.timedelta(days=1))])
    assert isinstance(opened, list) and isinstance(again, list)
    assert opened[0]["escalate"] and opened[0]["escalation"]["state"] == "new"
    assert not again[0]["escalate"] and again[0]["escalation"]["state"] == "ongoing"
    assert again[0]["escalation"]["alert_id"] == opened[0]["escalation"]["alert_id"]
    assert _queued(engine) == [("acme", "escalation.opened", pseudonym("acme", "p1"))] and woken == [1]
    payload = store.read_deliveries(engine)[0]["payload"]
    assert payload["type"] == "escalation.opened" and payload["data"]["alert_id"] == opened[0]["escalation"]["alert_id"]
    assert "p1" not in str(payload)  # no identifier of the person waits in the queue


def test_a_withdrawn_participant_is_answered_but_never_scored_logged_or_escalated(built):
    scorer, engine, spool, _, pseudonym = built
    store.forget(engine, "acme", pseudonym("acme", "p2"), [])
    [results] = scorer.score_jobs([_job("p1", "p2")])
    assert isinstance(results, list)
    assert [r["status"] for r in results] == ["scored", "withdrawn"] and "risk" not in results[1]
    spool.flush()
    assert list(store.read_predictions(engine)["participant_key"]) == [pseudonym("acme", "p1")]
    assert [key for _, _, key in _queued(engine)] == [pseudonym("acme", "p1")]


def test_without_explain_the_drivers_are_left_out(built):
    scorer, *_ = built
    job = _job("p1")
    job.explain = False
    [results] = scorer.score_jobs([job])
    assert isinstance(results, list) and "drivers" not in results[0]


def test_the_scorer_imports_without_bentoml():
    probe = "import sys, earlywarn.serving.scorer; print('bentoml' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_withdrawal_removes_queued_notifications_and_episodes(built):
    scorer, engine, _, _, pseudonym = built
    scorer.score_jobs([_job("p1", "p2")])
    assert len(store.read_deliveries(engine)) == 2
    store.forget(engine, "acme", pseudonym("acme", "p1"), [])
    assert [d["participant_key"] for d in store.read_deliveries(engine)] == [pseudonym("acme", "p2")]
    assert set(store.latest_episodes(engine, [("acme", pseudonym("acme", p)) for p in ("p1", "p2")])) == {
        ("acme", pseudonym("acme", "p2"))
    }
