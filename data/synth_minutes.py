"""Synthetic raw wearable files: minute-level activity counts that carry a synthetic cohort's daily sleep and activity,
so the actigraphy import can be tested end to end against the generator's daily truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from earlywarn.data.contract import DATE, PARTICIPANT

MINUTES = 1440
_WEARABLE_TRUTH = ("sleep_duration_h", "sleep_midpoint_h", "sleep_efficiency", "active_minutes", "sedentary_minutes")


def _night(rng: np.random.Generator, counts: np.ndarray, start: int, length: int, efficiency: float) -> None:
    """A bed period that starts and ends asleep, with wake bouts of 5–15 minutes inside, and small movements in sleep
    (so no 90-minute zero run looks like non-wear)."""
    counts[start : start + length] = 0.0
    wake_total = round(length * (1 - efficiency))
    placed = 0
    while placed < wake_total:
        bout = min(int(rng.integers(5, 16)), wake_total - placed)
        at = start + int(rng.integers(20, max(21, length - 20 - bout)))
        if counts[at - 3 : at + bout + 3].any():  # keep bouts apart so each stays a bout
            continue
        # Quiet wake in bed (A = 3–3.3): Cole-Kripke scores these minutes awake and their neighbours asleep.
        counts[at : at + bout] = rng.uniform(300, 330, bout)
        placed += bout
    twitches = start + np.arange(10, length - 10, 40) + rng.integers(0, 10, max(0, len(range(10, length - 10, 40))))
    twitches = twitches[counts[twitches] == 0]
    counts[twitches] = rng.uniform(1, 30, len(twitches))


def _awake(rng: np.random.Generator, counts: np.ndarray, minutes: np.ndarray, active: int, sedentary: int) -> None:
    """Spread active (≥ 1952), sedentary (1–99) and light minutes over the awake minutes of a day, shuffled."""
    n = len(minutes)
    active, sedentary = min(active, n), min(sedentary, n - min(active, n))
    kinds = np.r_[np.full(active, 2), np.full(sedentary, 0), np.full(n - active - sedentary, 1)]
    rng.shuffle(kinds)
    levels = {0: (1, 99), 1: (150, 1900), 2: (2100, 6000)}
    for kind, (lo, hi) in levels.items():
        chosen = minutes[kinds == kind]
        counts[chosen] = rng.uniform(lo, hi, len(chosen))


def participant_minutes(rng: np.random.Generator, days: pd.DataFrame) -> pd.Series:
    """One participant's daily truth (sorted by date) -> counts per minute; unworn days are all zeros."""
    start = pd.Timestamp(days[DATE].iloc[0]).normalize()
    total = len(days) * MINUTES
    counts = np.zeros(total)
    in_bed = np.zeros(total, bool)
    worn: list[tuple[int, dict]] = []
    for d, row in enumerate(days.itertuples(index=False)):
        truth = {k: getattr(row, k) for k in _WEARABLE_TRUTH}
        if any(pd.isna(v) for v in truth.values()):
            continue  # not worn that day: zeros, which the import must see as non-wear
        length = round(60 * truth["sleep_duration_h"] / truth["sleep_efficiency"])
        onset = max(0, d * MINUTES + round(60 * truth["sleep_midpoint_h"]) - length // 2)
        length = min(length, total - onset)
        _night(rng, counts, onset, length, float(truth["sleep_efficiency"]))
        in_bed[onset : onset + length] = True
        worn.append((d, truth))
    for d, truth in worn:  # nights first, so an evening bed time is never filled with daytime activity
        today = np.arange(d * MINUTES, (d + 1) * MINUTES)
        _awake(rng, counts, today[~in_bed[today]], int(truth["active_minutes"]), int(truth["sedentary_minutes"]))
    return pd.Series(counts, index=pd.date_range(start, periods=total, freq="min"))


def export_minutes(features: pd.DataFrame, out_dir: Path, epoch_seconds: int = 60, seed: int = 0) -> list[Path]:
    """Write `<participant_id>.csv` (timestamp, activity) per participant; sub-minute epochs split each minute's count."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for pid, days in features.sort_values([PARTICIPANT, DATE]).groupby(PARTICIPANT, sort=True):
        minutes = participant_minutes(rng, days)
        if epoch_seconds < 60:
            k = 60 // epoch_seconds
            stamps = (minutes.index.to_numpy()[:, None] + np.arange(k) * np.timedelta64(epoch_seconds, "s")).reshape(-1)
            values = np.repeat(np.round(minutes.to_numpy()) / k, k)
        else:
            k = epoch_seconds // 60
            stamps = minutes.index.to_numpy()[::k]
            values = np.add.reduceat(np.round(minutes.to_numpy()), np.arange(0, len(minutes), k))
        path = out_dir / f"{pid}.csv"
        frame = pd.DataFrame({"timestamp": pd.DatetimeIndex(stamps).strftime("%Y-%m-%dT%H:%M:%S"), "activity": values})
        frame.to_csv(path, index=False, float_format="%.2f")
        paths.append(path)
    return paths
