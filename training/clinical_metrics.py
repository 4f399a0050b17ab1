"""Metrics a care team reads: episodes, event sensitivity, lead time and alert load under the service's episode rules."""

from __future__ import annotations

import numpy as np
import pandas as pd

from earlywarn.data.contract import DATE, PARTICIPANT
from earlywarn.training.metrics import (
    calibration_slope_intercept,
    net_benefit,
)


def alert_onsets(frame: pd.DataFrame, high: np.ndarray) -> np.ndarray:
    """An alert is a high-band window whose participant was not high on the previous day (a run of high days is one alert)."""
    order = np.lexsort((frame[DATE].to_numpy(), frame[PARTICIPANT].to_numpy()))
    pid, day = frame[PARTICIPANT].to_numpy()[order], frame[DATE].to_numpy().astype("datetime64[D]").astype(np.int64)[order]
    h = high[order]
    prev_same = np.r_[False, (pid[1:] == pid[:-1]) & (day[1:] - day[:-1] == 1)]
    prev_high = np.r_[False, h[:-1]]
    onset = np.zeros(len(h), bool)
    onset[order] = h & ~(prev_same & prev_high)
    return onset


def median_lead_time(frame: pd.DataFrame, high: np.ndarray, events: pd.DataFrame | None, horizon: int) -> float:
    """Median days from the first high alert within the horizon before an event to the event (events with an alert only)."""
    if events is None or events.empty:
        return float("nan")
    alerts = frame.loc[high, [PARTICIPANT, DATE]]
    if alerts.empty:
        return float("nan")
    merged = events[[PARTICIPANT, DATE]].rename(columns={DATE: "event_date"}).merge(alerts, on=PARTICIPANT)
    lead = (merged["event_date"] - merged[DATE]).dt.days
    merged = merged[(lead >= 1) & (lead <= horizon)].assign(lead=lead)
    if merged.empty:
        return float("nan")
    return float(merged.groupby([PARTICIPANT, "event_date"])["lead"].max().median())


def _share(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator else float("nan")


def clinical_metrics(
    frame: pd.DataFrame,
    y: np.ndarray,
    p: np.ndarray,
    high_threshold: float | np.ndarray,
    elevated_threshold: float | np.ndarray | None,
    events: pd.DataFrame | None,
    horizon: int,
    months: float,
) -> dict[str, float]:
    """What a care team meets: PPV and NPV at each band's threshold, the share of events an alert came before,
    calibration inside the high band, calibration slope and
    intercept, and net benefit at the band thresholds."""
    out: dict[str, float] = {}
    cuts = {"high": high_threshold} | ({"elevated": elevated_threshold} if elevated_threshold is not None else {})
    for band, cut in cuts.items():
        flagged = p >= cut
        out[f"ppv_{band}"] = _share((flagged & (y == 1)).sum(), flagged.sum())
        out[f"npv_{band}"] = _share((~flagged & (y == 0)).sum(), (~flagged).sum())
        out[f"net_benefit_{band}"] = float(np.mean(net_benefit(y, p, np.array([float(np.mean(cut))]))))
    high = p >= high_threshold
    out["calibration_slope"], out["calibration_intercept"] = calibration_slope_intercept(y, p)
    out["event_sensitivity"] = event_sensitivity(frame, high, events, horizon)
    return out


def event_sensitivity(frame: pd.DataFrame, high: np.ndarray, events: pd.DataFrame | None, horizon: int) -> float:
    """The share of events (among those with a scored window in the horizon before them) that a high-band window
    came before, within the horizon."""
    if events is None or events.empty:
        return float("nan")
    scored = frame[[PARTICIPANT, DATE]].assign(high=high)
    pairs = events[[PARTICIPANT, DATE]].drop_duplicates().rename(columns={DATE: "event_date"}).merge(scored, on=PARTICIPANT)
    lead = (pairs["event_date"] - pairs[DATE]).dt.days
    before = pairs[(lead >= 1) & (lead <= horizon)]
    if before.empty:
        return float("nan")
    return float(before.groupby([PARTICIPANT, "event_date"])["high"].any().mean())
