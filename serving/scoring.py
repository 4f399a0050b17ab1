"""The API's view of the scoring core: request days onto the grid, scores with drivers and data quality."""

from __future__ import annotations

import datetime as dt
import warnings
from typing import Any

import numpy as np

from data.baseline import baseline_deviation
from data.contract import SIGNALS
from data.summary import summary_records, window_inputs
from training.bundle import ModelBundle
from training.scoring import SCORED, Histories, histories_from_days, score_histories

N_DRIVERS = 3
assemble = histories_from_days  # request days -> the core's grid, as the service builds it


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
    bundle: ModelBundle, batch: Histories, explain: bool = True, last_event: list[dt.date | None] | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[list[list[float | None]]]]:
    """The core's scores as API results, with drivers and data quality; returns (API results, model-input summaries,
    the model-input windows themselves)."""
    lookback = bundle.window.lookback
    window = batch.window(lookback)
    scores = score_histories(bundle, batch, explain=explain, last_event=last_event)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        z = baseline_deviation(batch.values)
        recent = np.nanmean(batch.values[:, -7:], axis=1)
        base = np.nanmean(batch.values[:, :-7], axis=1)
    results = []
    for i, pid in enumerate(batch.participant_ids):
        quality = {
            "days_observed": int(scores.days_observed[i]),
            "baseline_days": int(scores.baseline_days[i]),  # the personal history behind the deviations (cold start: few)
            "lookback_days": lookback,
            "missing_share": {f: round(float(scores.missing_share[i, j]), 3) for j, f in enumerate(bundle.features)},
        }
        entry: dict[str, Any] = {"participant_id": pid, "window_end": batch.end_dates[i].isoformat(), "data_quality": quality}
        if batch.as_of is not None:
            entry["as_of"] = batch.as_of[i].isoformat()
        if scores.status[i] != SCORED:
            entry |= {"status": scores.status[i], "reason": scores.reason[i]}
        else:
            contrib = scores.contributions
            entry |= {
                "status": SCORED,
                "risk": round(float(scores.risk[i]), 5),
                "band": scores.band[i],
                "escalate": scores.escalate(i),
                "drivers": _driver_entries(bundle, contrib[i], z[i], recent[i], base[i]) if contrib is not None else [],
            }
        results.append(entry)
    return results, summary_records(window, bundle.features), window_inputs(window)
