"""The API's view of the scoring core: request days onto the grid, scores with drivers and data quality."""

from __future__ import annotations

import datetime as dt
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from earlywarn.data.contract import SIGNALS
from earlywarn.data.summary import summary_records, window_inputs
from earlywarn.training import messages
from earlywarn.training.bundle import ModelBundle
from earlywarn.training.scoring import (
    MIN_DRIVER_EFFECT,
    SCORED,
    Histories,
    Scores,
    histories_from_days,
    reason_text,
    score_histories,
)
from earlywarn.training.uncertainty import CHECKED

N_DRIVERS = 3
CHANGE, MISSING_DATA = "change", "missing_data"  # a signal moved from the person's baseline / stopped arriving
STOPPED_DAYS = 4  # of the recent days missing, beyond the usual: the signal is listed as stopped in data_quality
assemble = histories_from_days  # request days -> the core's grid, as the service builds it


# A recent mean this close to the baseline (in the person's own SDs) did not move the score: the signal's part comes from
# its day-by-day pattern, and quoting a tiny change in the mean ("1 minutes below usual") would mislead.
MEAN_CHANGE_SD = 0.5


def _driver_text(language: str, kind: str, signal: str, recent: float, base: float, z: float, missing: int, days: int) -> str:
    """One plain sentence about a driver, in `language`, with the plural forms its numbers need."""
    label = messages.gettext(language, messages.SIGNAL_LABELS.get(signal, signal))
    if kind == MISSING_DATA:
        return messages.render(language, messages.DRIVERS["missing"], days, signal=label, missing=missing, days=days)
    unit, factor, decimals = messages.DISPLAY_UNITS.get(signal, (messages.GENERIC_UNIT, 1.0, 2))
    difference = (recent - base) * factor
    small = not np.isfinite(z) or abs(z) < MEAN_CHANGE_SD
    if not np.isfinite(difference) or round(abs(difference), decimals) == 0 or small:
        return messages.render(language, messages.DRIVERS["pattern"], days, signal=label, days=days)
    return messages.render(
        language,
        messages.DRIVERS["higher" if difference > 0 else "lower"],
        days,
        signal=label,
        amount=messages.amount(language, unit, abs(difference), decimals),
        days=days,
        recent=messages.number(language, recent * factor, decimals),
        baseline=messages.number(language, base * factor, decimals),
    )


def _driver_entries(bundle: ModelBundle, scores: Scores, i: int, stats: _RecentStats, language: str) -> list[dict[str, Any]]:
    """The signals that moved this participant's shown log-odds most from their usual days (at least
    MIN_DRIVER_EFFECT each), largest first. A signal is `missing_data` when most of its part is due to days missing
    beyond the person's usual gaps; a signal the partner never sends has no part and is never listed."""
    assert scores.contributions is not None and scores.missing_part is not None
    contrib, missing_part = scores.contributions[i], scores.missing_part[i]
    kinds = np.where(np.abs(missing_part) > np.abs(contrib - missing_part), MISSING_DATA, CHANGE)
    ranked = [
        int(j)
        for j in np.argsort(-np.abs(contrib))
        if scores.present[i, j] and np.isfinite(contrib[j]) and abs(contrib[j]) >= MIN_DRIVER_EFFECT
    ]
    out = []
    for j in ranked[:N_DRIVERS]:
        name, kind = bundle.features[j], str(kinds[j])
        recent, base = float(stats.recent[i, j]), float(scores.baseline_mean[i, j])
        missing = int(stats.missing[i, j])
        sig = SIGNALS.get(name)
        out.append(
            {
                "signal": name,
                "kind": kind,
                "direction": "raises risk" if contrib[j] > 0 else "lowers risk",
                "contribution": round(float(contrib[j]), 4),
                "recent_mean": None if np.isnan(recent) else round(recent, 3),
                "baseline_mean": None if np.isnan(base) else round(base, 3),
                "deviation_sd": None if np.isnan(stats.z[i, j]) else round(float(stats.z[i, j]), 2),
                "recent_days_missing": missing,
                "unit": sig.unit if sig else None,
                "text": _driver_text(language, kind, name, recent, base, float(stats.z[i, j]), missing, stats.days),
            }
        )
    return out


def _signal_lists(bundle: ModelBundle, scores: Scores, stats: _RecentStats, i: int) -> dict[str, list[str]]:
    """Which signals the score rests on, which the partner never sent, and which stopped arriving lately: missing on
    STOPPED_DAYS or more of the recent days, and more than two binomial SDs above what the person usually misses."""
    present = scores.present[i]
    rate = np.clip(scores.usual_gaps[i] / bundle.window.lookback, 0.0, 1.0)
    usual = stats.days * rate + 2 * np.sqrt(stats.days * rate * (1 - rate))
    stopped = present & (stats.missing[i] >= STOPPED_DAYS) & (stats.missing[i] > usual)
    names = bundle.features
    return {
        "signals_used": [f for f, p in zip(names, present, strict=True) if p],
        "signals_not_sent": [f for f, p in zip(names, present, strict=True) if not p],
        "signals_stopped": [f for f, s in zip(names, stopped, strict=True) if s],
    }


@dataclass
class _RecentStats:
    """Each signal over the recent days against the model's own baseline period: [P, F] mean, SD units, days missing."""

    recent: np.ndarray
    z: np.ndarray
    missing: np.ndarray
    days: int

    @classmethod
    def of(cls, bundle: ModelBundle, batch: Histories, baseline_mean: np.ndarray) -> _RecentStats:
        days = bundle.preprocessor.recent_days
        inputs = batch.values[:, -bundle.input_days :]
        last = inputs[:, -days:]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            recent = np.nanmean(last, axis=1)
            spread = np.nanstd(bundle.preprocessor.baseline_period(inputs), axis=1)
        z = (recent - baseline_mean) / np.maximum(spread, 1e-6 + 0.05 * np.abs(baseline_mean))
        return cls(recent, z, np.isnan(last).sum(axis=1), days)


def score(
    bundle: ModelBundle,
    batch: Histories,
    explain: bool = True,
    last_event: list[dt.date | None] | None = None,
    language: str | list[str] = messages.DEFAULT,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], np.ndarray]:
    """The core's scores as API results, with interval, drivers and data quality, texts in `language` (one, or one per
    participant); returns (API results, model-input summaries, the model-input windows themselves: [P, L, F])."""
    lookback = bundle.window.lookback
    window = batch.window(lookback)
    scores = score_histories(bundle, batch, explain=explain, last_event=last_event)
    stats = _RecentStats.of(bundle, batch, scores.baseline_mean)
    checked = bundle.interval.fitted_on == CHECKED
    results = []
    for i, pid in enumerate(batch.participant_ids):
        lang = language if isinstance(language, str) else language[i]
        quality = {
            "days_observed": int(scores.days_observed[i]),
            "baseline_days": int(scores.baseline_days[i]),  # the personal history behind the deviations (cold start: few)
            "lookback_days": lookback,
            "missing_share": {f: round(float(scores.missing_share[i, j]), 3) for j, f in enumerate(bundle.features)},
        } | _signal_lists(bundle, scores, stats, i)
        entry: dict[str, Any] = {"participant_id": pid, "window_end": batch.end_dates[i].isoformat(), "data_quality": quality}
        if batch.as_of is not None:
            entry["as_of"] = batch.as_of[i].isoformat()
        params = scores.reason_params[i]
        if scores.status[i] != SCORED and params is not None:
            entry |= {"status": scores.status[i], "reason": reason_text(scores.status[i], params, lang)}
        else:
            entry |= {
                "status": SCORED,
                "risk": round(float(scores.risk[i]), 5),
                "risk_interval": [round(float(scores.risk_low[i]), 5), round(float(scores.risk_high[i]), 5)],
                "interval_checked": checked,
                "band": scores.band[i],
                "band_text": messages.natural_frequency(lang, bundle.bands.rate(str(scores.band[i])), bundle.window.horizon),
                "escalate": scores.escalate(i),
                "drivers": _driver_entries(bundle, scores, i, stats, lang) if explain else [],
            }
        results.append(entry)
    return results, summary_records(window, bundle.features), window_inputs(window)
