"""Episode-level figures on cases small enough to check by hand: openings under the service's rules, PPV, leads."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from earlywarn.data.episodes import Rules
from earlywarn.training.episode_metrics import caught_events, episode_figures, judge_openings, openings


def _frame(days: int, people: tuple[str, ...] = ("a",)) -> pd.DataFrame:
    dates = pd.date_range("2025-01-01", periods=days)
    return pd.DataFrame({"participant_id": np.repeat(people, days), "date": np.tile(dates, len(people))})


def _events(*rows: tuple[str, str]) -> pd.DataFrame:
    return pd.DataFrame({"participant_id": [p for p, _ in rows], "date": pd.to_datetime([d for _, d in rows])})


def test_openings_follow_the_services_episode_rules():
    frame = _frame(40)
    risk = np.full(40, 0.1)
    risk[[5, 6, 10, 20, 30]] = 0.5  # 5-10 one episode; it closes on day 18, so 20 opens another, and 30 (10 days on) a third
    opened = openings(frame, risk, 0.4, Rules())
    assert list(opened["date"].dt.day) == [6, 21, 31]  # 1 January is day 0


def test_ppv_leads_and_post_event_openings():
    opened = pd.DataFrame(
        {"participant_id": ["a", "a", "a", "b"], "date": pd.to_datetime(["2025-01-06", "2025-03-20", "2025-02-20", "2025-01-03"])}
    )
    events = _events(("a", "2025-01-10"), ("a", "2025-02-05"), ("b", "2025-03-01"))
    judged = judge_openings(opened, events, horizon=14, washout=28)
    assert judged.loc[0, "lead"] == 4.0  # 6 Jan -> 10 Jan
    assert np.isnan(judged.loc[1, "lead"]) and not judged.loc[1, "post_event"]  # 20 Mar: no event after, 43 days after one
    assert judged.loc[2, "post_event"] and not judged.loc[0, "post_event"]  # 20 Feb opened 15 days after 5 Feb
    assert np.isnan(judged.loc[3, "lead"])  # b's event came 57 days later
    figures = episode_figures(judged, (1, 2), participant_months=2.0, reps=200, seed=0)
    assert figures["episodes_opened"] == 3 and figures["episodes_post_event"] == 1
    assert figures["episode_ppv"] == pytest.approx(1 / 3)
    assert figures["alerts_per_100_participant_months"] == pytest.approx(150.0)
    assert figures["event_sensitivity_episodes"] == 0.5 and figures["lead_time_p50_days"] == 4.0
    assert 0.0 <= figures["episode_ppv_ci_low"] <= 1 / 3 <= figures["episode_ppv_ci_high"] <= 1.0


def test_an_event_is_caught_by_an_opening_within_the_horizon_before_it_among_events_with_data_before_them():
    frame = _frame(40, ("a", "b"))
    opened = pd.DataFrame({"participant_id": ["a"], "date": pd.to_datetime(["2025-01-06"])})
    events = _events(("a", "2025-01-10"), ("a", "2025-02-05"), ("b", "2025-01-20"), ("c", "2025-01-20"))
    # a 10 Jan: caught (4 days). a 5 Feb: judged (a observed 22 Jan - 4 Feb), missed. b: judged, missed. c: never observed.
    assert caught_events(events, opened, frame, horizon=14) == (1, 3)
    assert caught_events(None, opened, frame, horizon=14) == (0, 0)


def test_no_resamples_asked_gives_no_interval_rather_than_an_error():
    judged = pd.DataFrame({"participant_id": ["a"], "date": pd.to_datetime(["2025-01-06"]), "lead": [4.0], "post_event": [False]})
    figures = episode_figures(judged, (1, 1), participant_months=1.0, reps=0)
    assert figures["episode_ppv"] == 1.0 and np.isnan(figures["episode_ppv_ci_low"]) and np.isnan(figures["episode_ppv_ci_high"])
