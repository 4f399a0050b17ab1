"""The one scoring core: participants' recent days in, each participant's status, risk and band out.

Every path that turns a participant's latest window into a risk calls `score_histories` — the API, `earlywarn score`,
the Ray Data path and the MLflow pyfunc — so eligibility rules live here and nowhere else."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from earlywarn.data.contract import DATE, PARTICIPANT
from earlywarn.training import messages
from earlywarn.training.bundle import ModelBundle
from earlywarn.training.calibration import BANDS

HISTORY_DAYS = 90  # the most history a request may carry; the model window is its last `lookback` days
SCORED, INSUFFICIENT, STALE, RECENT_EVENT = "scored", "insufficient_data", "stale", "recent_event"
# The table a registered model's predict returns, one row per participant: (column, MLflow type, always present).
OUTPUTS = (
    ("participant_id", "string", True),
    ("window_end", "string", True),
    ("status", "string", True),
    ("reason", "string", False),  # why a participant was not scored
    ("risk", "double", False),
    ("risk_low", "double", False),
    ("risk_high", "double", False),
    ("band", "string", False),
)
WITHDRAWN = "withdrawn"  # set by the service for a participant who withdrew consent: never scored or stored
SILENT = "silent"  # set by the service for a partner in silent mode: scored and stored for validation, not shown
NON_FINITE = "non_finite"  # a reason, not a status: the model gave no finite score (shown as insufficient_data)
# A score is for `as_of`; when the newest day with any signal is older than this, the window no longer describes the
# person now, so no score is shown (stated in the model card).
MAX_STALENESS_DAYS = 3
# A driver moves the shown log-odds by at least this much (about a tenth of the odds) or it is not listed: smaller
# parts are noise a care team should not read meaning into (stated in the model card and docs/clinical.md).
MIN_DRIVER_EFFECT = 0.1


@dataclass
class Histories:
    """Each participant's days on a grid ending at their window's last day (NaN = not observed)."""

    participant_ids: list[str]
    end_dates: list[dt.date]
    values: np.ndarray  # [P, days, F] float32; the last `lookback` days are the model window
    as_of: list[dt.date] | None = None  # the day each score is for (None: each window's last day)

    def window(self, lookback: int) -> np.ndarray:
        return self.values[:, -lookback:, :]


@dataclass
class Scores:
    """The core's verdict for every participant, columnar; risk and band are only meaningful where status is scored."""

    status: list[str]
    reason: list[str | None]  # in English; `reason_params` renders it in other languages (`reason_text`)
    reason_params: list[dict[str, Any] | None]
    risk: np.ndarray  # [P] float, NaN where not scored
    band: list[str | None]
    days_observed: np.ndarray  # [P] int
    baseline_days: np.ndarray  # [P] days with any signal in the personal baseline before the recent days (cold start: few)
    missing_share: np.ndarray  # [P, F] share of the window's days without each signal
    risk_low: np.ndarray  # [P] the risk interval's ends (`bundle.interval.coverage`), NaN where not scored
    risk_high: np.ndarray
    baseline_mean: np.ndarray  # [P, F] each person's baseline mean in raw units, the one the model used
    contributions: np.ndarray | None  # [P, F] each signal's exact part in the shown log-odds' change, when asked for
    missing_part: np.ndarray | None  # [P, F] the part of `contributions` due to days missing beyond the usual gaps
    present: np.ndarray  # [P, F] bool: the signal arrived on some day of the input history (the score rests on these)
    usual_gaps: np.ndarray  # [P, F] days of the lookback each signal is usually missing for this person

    def escalate(self, i: int) -> bool:
        return self.status[i] == SCORED and self.band[i] == "high"


def histories_from_days(
    participants: list[tuple[str, list[tuple[dt.date, list[float | None]]]]],
    n_features: int,
    as_of: list[dt.date] | None = None,
) -> Histories:
    """[(id, [(date, values in feature order)])] -> Histories ending at each participant's last reported day, scored
    for `as_of` (one day per participant). Days more than HISTORY_DAYS before the last one are ignored."""
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
    return Histories(ids, ends, grid_days, as_of)


def histories_from_frame(
    frame: pd.DataFrame, features: list[str], days: int, as_of: dt.date | None = None, newest: dt.date | None = None
) -> Histories:
    """A long daily table (participant_id, date, signals) -> the last `days` days of each participant, vectorised.
    Windows end on `as_of` when given, else on each participant's last day; absent signal columns are missing.
    Scores are for `as_of`, else for the newest day of the whole table (`newest`, when the frame is only part of
    it; default: the frame's newest day), so someone whose data stopped earlier than the rest's is stale."""
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
    day = as_of or newest or (dates.max().item() if len(dates) else None)
    days_for = [day] * len(ids) if day is not None else None
    return Histories([str(i) for i in ids], [d.item() for d in ends.astype("datetime64[D]")], values, days_for)


def _days_since_signal(histories: Histories) -> np.ndarray:
    """[P] days from each participant's newest day with any signal to the day the score is for (-1: no signal)."""
    seen = (~np.isnan(histories.values)).any(axis=2)
    n_days = seen.shape[1]
    last = n_days - 1 - np.argmax(seen[:, ::-1], axis=1)
    lag = np.zeros(len(seen), np.int64)
    if histories.as_of is not None:
        lag = np.array([(a - e).days for a, e in zip(histories.as_of, histories.end_dates, strict=True)], np.int64)
    return np.where(seen.any(axis=1), n_days - 1 - last + lag, -1)


def _recent_events(histories: Histories, last_event: Sequence[dt.date | None] | None, washout: int) -> list[dt.date | None]:
    """The event that puts each participant in washout: reported by the day the score is for, and fewer than
    `washout` days before the window's last day (the windows training never saw)."""
    if last_event is None:
        return [None] * len(histories.participant_ids)
    as_of = histories.as_of or histories.end_dates
    return [
        e if e is not None and e <= a and (end - e).days < washout else None
        for e, a, end in zip(last_event, as_of, histories.end_dates, strict=True)
    ]


Verdict = tuple[str, dict[str, Any] | None]  # (status, the reason's parameters; None when scored)


def _verdicts(
    bundle: ModelBundle, histories: Histories, days_observed: np.ndarray, events: list[dt.date | None], max_staleness: int
) -> list[Verdict]:
    """(status, the parameters of the reason it is not scored) for each participant before the model runs."""
    lookback, min_days = bundle.window.lookback, bundle.window.min_observed_days
    since = _days_since_signal(histories)
    out: list[Verdict] = []
    for i, n in enumerate(days_observed):
        if events[i] is not None:
            out.append((RECENT_EVENT, {"event_date": str(events[i]), "washout": bundle.window.washout_days}))
        elif since[i] > max_staleness:
            out.append((STALE, {"days_old": int(since[i]), "max_days": max_staleness}))
        elif n < min_days:
            out.append((INSUFFICIENT, {"observed": int(n), "lookback": lookback, "needed": min_days}))
        else:
            out.append((SCORED, None))
    return out


def reason_text(status: str, params: dict[str, Any], language: str = messages.DEFAULT) -> str:
    """Why a participant was not scored, in `language`."""
    key = NON_FINITE if status == INSUFFICIENT and not params else status
    count = params.get(messages.REASON_COUNTS[key]) if key in messages.REASON_COUNTS else None
    return messages.render(language, messages.REASONS[key], count, **params)


def score_histories(
    bundle: ModelBundle,
    histories: Histories,
    explain: bool = False,
    last_event: Sequence[dt.date | None] | None = None,
    max_staleness_days: int = MAX_STALENESS_DAYS,
) -> Scores:
    """Score every eligible participant in one forward pass. Not scored: a reported event within the washout
    (`last_event`: each participant's latest), data older than `max_staleness_days` on the day the score is for,
    fewer than `min_observed_days` of the lookback window with any signal, or a non-finite model output."""
    lookback = bundle.window.lookback
    window = histories.window(lookback)
    inputs = histories.values[:, -bundle.input_days :]  # the window and the personal baseline before it
    observed = ~np.isnan(window)
    days_observed = observed.any(axis=2).sum(axis=1)
    baseline = inputs[:, : -bundle.preprocessor.recent_days]
    baseline_days = (~np.isnan(baseline)).any(axis=2).sum(axis=1)
    events = _recent_events(histories, last_event, bundle.window.washout_days)
    verdicts = _verdicts(bundle, histories, days_observed, events, max_staleness_days)
    eligible = np.flatnonzero([v[0] == SCORED for v in verdicts])
    risk, low, high = (np.full(len(window), np.nan) for _ in range(3))
    contrib = np.zeros((len(window), len(bundle.features))) if explain else None
    missing_part = np.zeros_like(contrib) if contrib is not None else None
    if len(eligible):
        made = bundle.assess(inputs[eligible], explain)
        risk[eligible], low[eligible], high[eligible] = made.risk, made.low, made.high
        if contrib is not None and missing_part is not None:
            contrib[eligible], missing_part[eligible] = made.contributions, made.missing_part
    bands = bundle.bands.assign(np.nan_to_num(risk, nan=0.0))
    status: list[str] = []
    reason: list[str | None] = []
    params: list[dict[str, Any] | None] = []
    band: list[str | None] = []
    for i, (verdict, why) in enumerate(verdicts):
        if verdict == SCORED and not np.isfinite(risk[i]):
            verdict, why = INSUFFICIENT, {}
        status.append(verdict)
        params.append(why)
        reason.append(reason_text(verdict, why) if why is not None else None)
        band.append(BANDS[bands[i]] if verdict == SCORED else None)
        if verdict != SCORED:
            risk[i] = low[i] = high[i] = np.nan
            if contrib is not None and missing_part is not None:
                contrib[i] = missing_part[i] = 0.0
    return Scores(
        status,
        reason,
        params,
        risk,
        band,
        days_observed,
        baseline_days,
        1.0 - observed.mean(axis=1),
        low,
        high,
        bundle.preprocessor.baseline_means(inputs),
        contrib,
        missing_part,
        (~np.isnan(inputs)).any(axis=1),
        bundle.preprocessor.usual_gaps(inputs),
    )
