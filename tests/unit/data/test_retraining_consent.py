"""Only partners that opted in, and only their people with enough logged days, become training data (issue 30)."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from earlywarn.data import store
from earlywarn.training.retrain import _consented


def test_traffic_trains_only_with_the_partners_consent_and_enough_days(tmp_path):
    engine = store.engine_for(f"sqlite:///{tmp_path / 'store.db'}")
    day = dt.date(2025, 3, 1)

    def rows(partner: str, person: str, days: int) -> pd.DataFrame:
        dates = [day + dt.timedelta(days=i) for i in range(days)]
        return pd.DataFrame({"partner": partner, "participant_key": person, "date": dates, "steps": 1.0})

    logged = pd.concat([rows("opted", "long", 30), rows("opted", "probe", 1), rows("other", "anyone", 60)])
    stats: dict[str, int] = {}
    assert _consented(engine, logged, stats).empty and stats["left_out_partners"] == 2  # nobody opted in: nothing used
    store.allow_retraining(engine, "opted", min_days=28, actor="test")
    used = _consented(engine, logged, stats)
    assert set(used["participant_key"]) == {"long"} and len(used) == 30  # a one-day probe is not a course
    assert stats == {"left_out_partners": 1, "left_out_people": 1}
    store.deny_retraining(engine, "opted", actor="test")
    assert _consented(engine, logged, stats).empty
    assert [e.detail["allowed"] for e in store.audit.entries(engine)] == [True, False]
