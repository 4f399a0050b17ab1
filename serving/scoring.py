"""Scoring logic behind the API, as plain functions: assemble windows, score in one pass, explain, check quality."""

from __future__ import annotations

import datetime as dt
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from data.baseline import baseline_deviation
from data.contract import SIGNALS
from data.summary import summary_records, window_inputs
from training.bundle import ModelBundle
from training.calibration import BANDS

HISTORY_DAYS = 90
N_DRIVERS = 3


@dataclass
class Batch:
    """Request data on a day grid ending at each participant's last reported day."""

    participant_ids: list[str]
    end_dates: list[dt.date]
    history: np.ndarray  # [P, 90, F] float32, NaN = missing; the last `lookback` days are the model window

    def window(self, lookback: int) -> np.ndarray:
        return self.history[:, -lookback:, :]


def assemble(participants: list[tuple[str, list[tuple[dt.date, list[float | None]]]]], n_features: int) -> Batch:
    """[(id, [(date, values in feature order)])] -> a Batch. Days more than 90 days before the last one are ignored."""
    ids, ends, pidx, offset, rows = [], [], [], [], []
    for i, (pid, days) in enumerate(participants):
        end = days[-1][0]
        ids.append(pid)
        ends.append(end)
        for day, values in days:
            pidx.append(i)
            offset.append((end - day).days)
            rows.append(values)
    history = np.full((len(ids), HISTORY_DAYS, n_features), np.nan, np.float32)
    p = np.asarray(pidx, np.int64)
    o = np.asarray(offset, np.int64)
    grid = np.asarray(rows, dtype=np.float64).reshape(len(rows), n_features) if rows else np.empty((0, n_features))
    keep = o < HISTORY_DAYS
    history[p[keep], HISTORY_DAYS - 1 - o[keep]] = grid[keep]  # None became NaN in the float conversion
    return Batch(ids, ends, history)


def _driver_entries(
    bundle: ModelBundle, contrib: np.ndarray, z: np.ndarray, recent: np.ndarray, base: np.ndarray
) -> list[dict[str, Any]]:
    order = np.argsort(-np.abs(contrib))
    out = []
    for j in order[:N_DRIVERS]:
        if not np.isfinite(contrib[j]) or abs(contrib[j]) < 1e-3:
            continue
        name = bundle.features[j]
        sig = SIGNALS.get(name)
        out.append(
            {
                "signal": name,
                "direction": "raises risk" if contrib[j] > 0 else "lowers risk",
                "contribution": round(float(contrib[j]), 4),
                "recent_mean": None if np.isnan(recent[j]) else round(float(recent[j]), 3),
                "baseline_mean": None if np.isnan(base[j]) else round(float(base[j]), 3),
                "deviation_sd": None if np.isnan(z[j]) else round(float(z[j]), 2),
                "unit": sig.unit if sig else None,
            }
        )
    return out


def score(
    bundle: ModelBundle, batch: Batch, explain: bool = True
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[list[list[float | None]]]]:
    """Score every participant with enough data in one forward pass; returns (API results, model-input summaries,
    the model-input windows themselves)."""
    lookback, min_days = bundle.window.lookback, bundle.window.min_observed_days
    window = batch.window(lookback)
    observed = ~np.isnan(window)
    days_observed = observed.any(axis=2).sum(axis=1)
    missing = 1.0 - observed.mean(axis=1)
    eligible = np.flatnonzero(days_observed >= min_days)
    risk = np.full(len(window), np.nan)
    contrib = np.zeros((len(window), len(bundle.features)))
    if len(eligible) and explain:
        risk[eligible], contrib[eligible] = bundle.risk_and_attributions(window[eligible])
    elif len(eligible):
        risk[eligible] = bundle.risk(window[eligible])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        z = baseline_deviation(batch.history)
        recent = np.nanmean(batch.history[:, -7:], axis=1)
        base = np.nanmean(batch.history[:, :-7], axis=1)
    bands = bundle.bands.assign(np.nan_to_num(risk, nan=0.0))
    summaries = summary_records(window, bundle.features)
    results = []
    for i, pid in enumerate(batch.participant_ids):
        quality = {
            "days_observed": int(days_observed[i]),
            "lookback_days": lookback,
            "missing_share": {f: round(float(missing[i, j]), 3) for j, f in enumerate(bundle.features)},
        }
        entry: dict[str, Any] = {"participant_id": pid, "window_end": batch.end_dates[i].isoformat(), "data_quality": quality}
        if days_observed[i] < min_days:
            entry |= {
                "status": "insufficient_data",
                "reason": f"{days_observed[i]} of the last {lookback} days have any signal; at least {min_days} are needed",
            }
        elif not np.isfinite(risk[i]):
            entry |= {"status": "insufficient_data", "reason": "the model did not produce a finite score for this input"}
        else:
            band = BANDS[bands[i]]
            entry |= {
                "status": "scored",
                "risk": round(float(risk[i]), 5),
                "band": band,
                "escalate": band == "high",
                "drivers": _driver_entries(bundle, contrib[i], z[i], recent[i], base[i]) if explain else [],
            }
        results.append(entry)
    return results, summaries, window_inputs(window)
