"""How the latent course shows in daily signals: levels, weekly rhythm, noise, gaps, prodromal shifts and drift."""

from __future__ import annotations

import numpy as np
import pandas as pd

from earlywarn.data.contract import SIGNALS, STANDARD_FEATURES
from earlywarn.data.synth_course import (
    SynthConfig,
)

# device-change: one signal is recounted; seasonal: several drift slowly; population: true risk rises;
# signature-change: relapses stop showing in the signals that used to announce them (inputs look the same,
# outcomes diverge from what the model predicts: the model goes stale without any input drift).
# Case-control: a case's lasting shift, in within-person SDs, drawn per case (some cases look much like controls),
# and how much more their activity varies from day to day (less regular rhythms).
_CASE_SHIFT = (0.1, 0.9)


_CASE_IRREGULARITY = 1.35


_IRREGULAR = ("steps", "active_minutes", "sedentary_minutes", "sleep_midpoint_h", "sleep_efficiency")


# Population mean, between-person SD and within-person daily SD of each signal.
_LEVELS: dict[str, tuple[float, float, float]] = {
    "sleep_duration_h": (7.2, 0.6, 0.7),
    "sleep_midpoint_h": (4.0, 0.8, 0.6),
    "sleep_efficiency": (0.88, 0.035, 0.035),
    "steps": (7500, 2200, 2300),
    "active_minutes": (45, 14, 14),
    "sedentary_minutes": (600, 70, 60),
    "screen_time_min": (220, 60, 45),
    "screen_unlocks": (80, 22, 14),
    "night_screen_min": (15, 7, 7),
    "calls_count": (3.0, 1.2, 1.3),
    "call_duration_min": (15, 6, 8),
    "time_at_home_frac": (0.62, 0.09, 0.09),
    "distance_km": (12, 4, 5),
    "location_entropy": (1.0, 0.25, 0.25),
    "places_visited": (4.0, 1.0, 1.2),
    "resting_hr_bpm": (64, 7, 2.5),
    "hrv_rmssd_ms": (45, 12, 6),
    "mood_ema": (6.5, 0.9, 0.9),
    "anxiety_ema": (3.5, 1.0, 0.9),
}


# Weekend shift, in within-person SDs (people sleep longer and later, move differently, stay home).
_WEEKEND: dict[str, float] = {
    "sleep_duration_h": 0.7,
    "sleep_midpoint_h": 1.3,
    "steps": -0.3,
    "active_minutes": 0.2,
    "sedentary_minutes": -0.4,
    "screen_time_min": 0.5,
    "night_screen_min": 0.6,
    "calls_count": 0.3,
    "time_at_home_frac": 0.6,
    "distance_km": 0.3,
    "mood_ema": 0.3,
    "anxiety_ema": -0.3,
}


# Loadings of each signal on three shared daily factors (activity, sleep, affect) so signals co-vary.
_FACTORS: dict[str, tuple[float, float, float]] = {
    "steps": (0.75, 0, 0),
    "active_minutes": (0.7, 0, 0),
    "sedentary_minutes": (-0.55, 0, 0),
    "distance_km": (0.6, 0, 0),
    "places_visited": (0.5, 0, 0),
    "location_entropy": (0.45, 0, 0),
    "time_at_home_frac": (-0.6, 0, 0),
    "sleep_duration_h": (0, 0.6, 0),
    "sleep_efficiency": (0, 0.55, 0),
    "sleep_midpoint_h": (0, -0.4, 0),
    "hrv_rmssd_ms": (0.2, 0.4, 0),
    "resting_hr_bpm": (-0.2, -0.3, 0),
    "mood_ema": (0.2, 0.2, 0.7),
    "anxiety_ema": (0, -0.2, -0.65),
    "calls_count": (0, 0, 0.35),
    "call_duration_min": (0, 0, 0.3),
    "screen_time_min": (-0.2, 0, -0.2),
    "night_screen_min": (0, -0.35, 0),
}


_WEARABLE = (
    "sleep_duration_h",
    "sleep_midpoint_h",
    "sleep_efficiency",
    "steps",
    "active_minutes",
    "sedentary_minutes",
    "resting_hr_bpm",
    "hrv_rmssd_ms",
)


_EMA = ("mood_ema", "anxiety_ema")


_GROUPS = sorted({s.group for s in SIGNALS.values()})


_COUNTS = ("steps", "screen_unlocks", "calls_count", "places_visited")


# Full-severity prodromal shift, in within-person SDs.
_PRODROME_EFFECT = 2.0


# Bipolar disorder: half the prodromes are manic — less sleep, more activity, calls, mobility and phone use, higher
# mood and agitation — and depressive ones come with longer sleep (hypersomnia); 0 = not moved.
_MANIC: dict[str, int] = {
    "sleep_duration_h": -1,
    "sleep_midpoint_h": 1,
    "sleep_efficiency": 0,
    "steps": 1,
    "active_minutes": 1,
    "sedentary_minutes": -1,
    "screen_time_min": 1,
    "screen_unlocks": 1,
    "night_screen_min": 1,
    "calls_count": 1,
    "call_duration_min": 1,
    "time_at_home_frac": -1,
    "distance_km": 1,
    "location_entropy": 1,
    "places_visited": 1,
    "resting_hr_bpm": 1,
    "hrv_rmssd_ms": -1,
    "mood_ema": 1,
    "anxiety_ema": 1,
}


_BIPOLAR_DEPRESSION = {"sleep_duration_h": 1}  # where bipolar depression differs from the contract's direction


MANIC_SHARE = 0.5


def _ar1(rng: np.random.Generator, shape: tuple[int, int, int], phi: float) -> np.ndarray:
    """Unit-variance AR(1) series along axis 1."""
    eps = rng.standard_normal(shape).astype(np.float32)
    out = np.empty_like(eps)
    out[:, 0] = eps[:, 0]
    scale = np.sqrt(1 - phi**2)
    for t in range(1, shape[1]):
        out[:, t] = phi * out[:, t - 1] + scale * eps[:, t]
    return out


def _gaps(rng: np.random.Generator, p_start: np.ndarray, p_end: float) -> np.ndarray:
    """Runs of missing days from a two-state Markov chain; p_start is [n, days]."""
    n, days = p_start.shape
    missing = np.zeros((n, days), bool)
    state = np.zeros(n, bool)
    u = rng.random((n, days))
    for t in range(days):
        state = np.where(state, u[:, t] >= p_end, u[:, t] < p_start[:, t])
        missing[:, t] = state
    return missing


def _episode_kinds(cfg: SynthConfig, severity: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """[n, days] whether each day's prodrome (or recovery from one) is manic: drawn per episode, at its onset, from a
    child stream (spawning does not advance `rng`), so the depression cohorts of every seed stay what they were."""
    manic = np.zeros(severity.shape, bool)
    if cfg.condition != "bipolar":
        return manic
    n = len(severity)
    rng = rng.spawn(1)[0]
    onset = (severity > 0) & (np.concatenate([np.zeros((n, 1)), severity[:, :-1]], axis=1) == 0)
    kind = np.zeros(n, bool)
    for t in range(severity.shape[1]):
        starting = onset[:, t]
        kind[starting] = rng.random(int(starting.sum())) < MANIC_SHARE
        manic[:, t] = kind
    return manic


def _direction(cfg: SynthConfig, name: str, manic: np.ndarray) -> np.ndarray | int:
    """The way a signal moves in a prodrome: the contract's worse way, or for bipolar disorder the way of the
    current episode's kind."""
    if cfg.condition != "bipolar":
        return SIGNALS[name].worse
    depressive = _BIPOLAR_DEPRESSION.get(name, SIGNALS[name].worse)
    return np.where(manic, _MANIC[name], depressive)


def _apply_drift(cfg: SynthConfig, values: np.ndarray, dates: pd.DatetimeIndex, drift_day: int) -> None:
    """Shift the observed signals (not the latent risk) for the device-change and seasonal scenarios."""
    col = {name: j for j, name in enumerate(STANDARD_FEATURES)}
    if cfg.drift == "device-change":
        # A firmware update recounts steps: every step count from that day on is 40% lower.
        values[:, drift_day:, col["steps"]] *= 0.6
    elif cfg.drift == "seasonal":
        ramp = np.clip((np.arange(len(dates)) - drift_day) / 30.0, 0.0, 1.0).astype(np.float32)
        values[:, :, col["sleep_duration_h"]] += 0.6 * ramp
        values[:, :, col["steps"]] *= 1 - 0.25 * ramp
        values[:, :, col["distance_km"]] *= 1 - 0.3 * ramp
        values[:, :, col["time_at_home_frac"]] += 0.08 * ramp
