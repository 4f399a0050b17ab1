"""The one scoring core: participants' recent days in, each participant's status, risk and band out.

Every path that turns a participant's latest window into a risk calls `score_histories` — the API, `earlywarn score`,
the Ray Data path and the MLflow pyfunc — so eligibility rules live here and nowhere else."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from data.contract import DATE, PARTICIPANT
from training.bundle import ModelBundle
from training.calibration import BANDS

HISTORY_DAYS = 90  # the most history a request may carry; the model window is its last `lookback` days
SCORED, INSUFFICIENT = "scored", "insufficient_data"


@dataclass
class Histories:
    """Each participant's days on a grid ending at their window's last day (NaN = not observed)."""

    participant_ids: list[str]
    end_dates: list[dt.date]
    values: np.ndarray  # [P, days, F] float32; the last `lookback` days are the model window

    def window(self, lookback: int) -> np.ndarray:
        return self.values[:, -lookback:, :]


@dataclass
class Scores:
    """The core's verdict for every participant, columnar; risk and band are only meaningful where status is scored."""

    status: list[str]
    reason: list[str | None]
    risk: np.ndarray  # [P] float, NaN where not scored
    band: list[str | None]
    days_observed: np.ndarray  # [P] int
    baseline_days: np.ndarray  # [P] days with any signal in the personal baseline before the recent days (cold start: few)
    missing_share: np.ndarray  # [P, F] share of the window's days without each signal
    contributions: np.ndarray | None  # [P, F] per-signal input x gradient, when asked for

    def escalate(self, i: int) -> bool:
        return self.status[i] == SCORED and self.band[i] == "high"


def histories_from_days(participants: list[tuple[str, list[tuple[dt.date, list[float | None]]]]], n_features: int) -> Histories:
    """[(id, [(date, values in feature order)])] -> Histories ending at each participant's last reported day.
    Days more than HISTORY_DAYS before the last one are ignored."""
    ids, ends, pidx, offset, rows = [], [], [], [], []
    for i, (pid, days) in enumerate(participants):
        end = days[-1][0]
        ids.append(pid)
        ends.append(end)
        for day, values in days:
            pidx.append(i)
            offset.append((end - day).days)
            rows.append(values)
    grid_days = np.full((len(ids), HISTORY_DAYS, n_features), np.nan, np.float32)
    p = np.asarray(pidx, np.int64)
    o = np.asarray(offset, np.int64)
    grid = np.asarray(rows, dtype=np.float64).reshape(len(rows), n_features) if rows else np.empty((0, n_features))
    keep = o < HISTORY_DAYS
    grid_days[p[keep], HISTORY_DAYS - 1 - o[keep]] = grid[keep]  # None became NaN in the float conversion
    return Histories(ids, ends, grid_days)


def histories_from_frame(frame: pd.DataFrame, features: list[str], days: int, as_of: dt.date | None = None) -> Histories:
    """A long daily table (participant_id, date, signals) -> the last `days` days of each participant, vectorised.
    Windows end on `as_of` when given, else on each participant's last day; absent signal columns are missing."""
    ids, codes = np.unique(frame[PARTICIPANT].astype(str).to_numpy(), return_inverse=True)
    dates = pd.to_datetime(frame[DATE]).to_numpy("datetime64[D]")
    if as_of is not None:
        ends = np.full(len(ids), np.datetime64(as_of, "D"))
    else:
        order = np.argsort(codes, kind="stable")
        starts = np.r_[0, np.flatnonzero(np.diff(codes[order])) + 1] if len(order) else np.empty(0, np.int64)
        ends = np.maximum.reduceat(dates[order].astype("int64"), starts).astype("datetime64[D]")
    offset = (ends[codes] - dates).astype(np.int64)  # 0 = the window's last day
    keep = (offset >= 0) & (offset < days)
    values = np.full((len(ids), days, len(features)), np.nan, np.float32)
    present = [f for f in features if f in frame.columns]
    columns = [features.index(f) for f in present]
    block = frame.loc[keep, present].to_numpy(np.float32)
    values[codes[keep][:, None], (days - 1 - offset[keep])[:, None], np.asarray(columns)[None, :]] = block
    return Histories([str(i) for i in ids], [d.item() for d in ends.astype("datetime64[D]")], values)


def score_histories(bundle: ModelBundle, histories: Histories, explain: bool = False) -> Scores:
    """Score every eligible participant in one forward pass. Eligibility: at least `min_observed_days` of the
    lookback window have any signal, and the model gives a finite score."""
    lookback, min_days = bundle.window.lookback, bundle.window.min_observed_days
    window = histories.window(lookback)
    inputs = histories.values[:, -bundle.input_days :]  # the window and the personal baseline before it
    observed = ~np.isnan(window)
    days_observed = observed.any(axis=2).sum(axis=1)
    baseline = inputs[:, : -bundle.preprocessor.recent_days]
    baseline_days = (~np.isnan(baseline)).any(axis=2).sum(axis=1)
    eligible = np.flatnonzero(days_observed >= min_days)
    risk = np.full(len(window), np.nan)
    contrib = np.zeros((len(window), len(bundle.features))) if explain else None
    if len(eligible) and contrib is not None:
        risk[eligible], contrib[eligible] = bundle.risk_and_attributions(inputs[eligible])
    elif len(eligible):
        risk[eligible] = bundle.risk(inputs[eligible])
    bands = bundle.bands.assign(np.nan_to_num(risk, nan=0.0))
    status: list[str] = []
    reason: list[str | None] = []
    band: list[str | None] = []
    for i, n in enumerate(days_observed):
        if n < min_days:
            why: str | None = f"{n} of the last {lookback} days have any signal; at least {min_days} are needed"
        elif not np.isfinite(risk[i]):
            why = "the model did not produce a finite score for this input"
        else:
            why = None
        status.append(SCORED if why is None else INSUFFICIENT)
        reason.append(why)
        band.append(BANDS[bands[i]] if why is None else None)
        if why is not None:
            risk[i] = np.nan
    return Scores(status, reason, risk, band, days_observed, baseline_days, 1.0 - observed.mean(axis=1), contrib)
