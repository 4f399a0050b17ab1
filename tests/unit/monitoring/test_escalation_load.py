"""Live escalation figures from store-shaped frames, checked by hand: load, matured PPV, report delays, budgets."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from earlywarn.monitoring.escalation_load import budget_alert, escalation_figures, report_delays
from earlywarn.monitoring.rules import Thresholds

TODAY = dt.date(2025, 6, 30)


def _opened(*rows: tuple[str, str]) -> pd.DataFrame:
    return pd.DataFrame(
        {"partner": "acme", "participant_key": [k for k, _ in rows], "day": [dt.date.fromisoformat(d) for _, d in rows]}
    )


def test_live_load_counts_every_opening_and_ppv_only_matured_ones_without_post_event_openings():
    opened = _opened(("k1", "2025-05-01"), ("k2", "2025-05-10"), ("k3", "2025-06-01"), ("k1", "2025-06-25"))
    outcomes = pd.DataFrame(
        {"partner": "acme", "participant_key": ["k1", "k3"], "date": [dt.date(2025, 5, 5), dt.date(2025, 5, 20)]}
        | {"created_at": [dt.datetime(2025, 5, 6, tzinfo=dt.UTC), dt.datetime(2025, 6, 10, tzinfo=dt.UTC)]}
    )
    days = pd.date_range("2025-04-01", "2025-06-30")
    scored = pd.DataFrame(
        {"partner": "acme", "participant_key": ["k1"] * len(days) + ["k2"] * len(days), "window_end": list(days) * 2}
    )
    v = escalation_figures(opened, outcomes, scored, TODAY, horizon=14, washout=28)
    # k1 on 1 May: followed 4 days later. k2: not followed. k3 on 1 June: 12 days after its event (reported 21 days
    # late): post-event. k1 on 25 June: not matured (the horizon has not passed).
    assert v["live_episodes_matured"] == 2 and v["live_episodes_post_event"] == 1
    assert v["live_episode_ppv"] == 0.5 and v["live_lead_time_p50_days"] == 4.0
    months = 2 * len(days) / 30
    assert v["live_alerts_per_100_participant_months"] == pytest.approx(100 * 3 / months)  # every non-post opening
    assert report_delays(outcomes) == {
        "outcomes_reported": 2.0,
        "report_delay_max_days": 21.0,
        "report_delay_p50_days": 11.0,
        "report_delay_p90_days": pytest.approx(19.0),
    }


def test_a_budget_alerts_only_its_partner_when_the_load_passes_it(tmp_path):
    path = tmp_path / "limits.toml"
    path.write_text("[thresholds]\nmin_rows = 10\n[alert_budgets]\nacme = 5\n")
    t = Thresholds.load(path)
    assert t.alert_budgets == {"acme": 5.0} and t.min_rows == 10
    assert budget_alert("acme", {"live_alerts_per_100_participant_months": 5.0}, t) is None
    alert = budget_alert("acme", {"live_alerts_per_100_participant_months": 7.5}, t)
    assert alert is not None and alert.kind == "alert_load" and "budget of 5" in alert.message
    assert budget_alert("beta", {"live_alerts_per_100_participant_months": 70.0}, t) is None
    path.write_text('[alert_budgets]\nacme = "5"\n')
    with pytest.raises(ValueError, match="alert_budgets"):
        Thresholds.load(path)
