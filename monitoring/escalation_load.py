"""Live escalation figures per scope: episode PPV on matured openings, event sensitivity, lead times, alert load
against the partner's budget, and how late outcomes are reported."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from earlywarn.data.contract import DATE, PARTICIPANT
from earlywarn.monitoring.rules import Alert, Thresholds
from earlywarn.training.episode_metrics import caught_events, episode_figures, judge_openings

DELAY_QUANTILES = (0.5, 0.9)


def _people_days(frame: pd.DataFrame, key: str, day: str) -> pd.DataFrame:
    """A store frame as (participant, date), the participant named with its partner (keys are per partner)."""
    if frame.empty:
        return pd.DataFrame({PARTICIPANT: pd.Series(dtype=str), DATE: pd.Series(dtype="datetime64[ns]")})
    return pd.DataFrame({PARTICIPANT: frame["partner"] + "/" + frame[key], DATE: pd.to_datetime(frame[day])})


def escalation_figures(
    opened: pd.DataFrame,
    outcomes: pd.DataFrame,
    scored: pd.DataFrame,
    today: dt.date,
    horizon: int,
    washout: int,
    seed: int = 0,
) -> dict[str, float]:
    """Openings old enough for their horizon to have passed, judged against the outcomes reported since (late reports
    included: an opening after an event is post-event, neither a warning nor a false alarm); alert load over every
    opening in the window and the participant-days scored in it."""
    openings = _people_days(opened, "participant_key", "day")
    events = _people_days(outcomes, "participant_key", "date")
    observed = _people_days(scored, "participant_key", "window_end")
    matured = openings[openings[DATE] <= pd.Timestamp(today - dt.timedelta(days=horizon))]
    closed_events = events[events[DATE] <= pd.Timestamp(today)]
    months = len(observed) / 30.0
    figures = episode_figures(
        judge_openings(matured, closed_events, horizon, washout),
        caught_events(closed_events, openings, observed, horizon),
        months,
        200,
        seed,
    )
    post = judge_openings(openings, closed_events, horizon, washout)["post_event"]
    figures["alerts_per_100_participant_months"] = 100 * float((~post).sum()) / months if months else float("nan")
    figures["episodes_matured"] = figures.pop("episodes_opened")
    return {f"live_{k}": v for k, v in figures.items()}


def report_delays(outcomes: pd.DataFrame) -> dict[str, float]:
    """Days from an event to its report: how long an opening stays unjudged, and how often reports come too late to
    stop post-event alerts."""
    if outcomes.empty:
        return {"outcomes_reported": 0.0}
    created = pd.to_datetime(outcomes["created_at"], utc=True).dt.tz_convert(None).dt.normalize()
    delay = (created - pd.to_datetime(outcomes["date"])).dt.days.clip(lower=0).to_numpy(float)
    out = {"outcomes_reported": float(len(delay)), "report_delay_max_days": float(delay.max())}
    out |= {f"report_delay_p{int(q * 100)}_days": float(np.quantile(delay, q)) for q in DELAY_QUANTILES}
    return out


def budget_alert(scope: str, values: dict[str, float], t: Thresholds) -> Alert | None:
    """The partner's alert budget (alerts per 100 participant-months), when the live load passes it."""
    budget, load = t.alert_budgets.get(scope), values.get("live_alerts_per_100_participant_months", float("nan"))
    if budget is None or not load > budget:
        return None
    message = f"[{scope}] {load:.1f} escalations per 100 participant-months, over the partner's budget of {budget:g}"
    return Alert(scope, "alert_load", "escalations", load, budget, message)
