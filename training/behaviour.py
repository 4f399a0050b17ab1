"""Behavioural checks of a trained model: worse sleep must not lower a score, a stable personal level alone must not
raise it, and a model for bipolar disorder must read a manic-type week as a warning."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from earlywarn.training.bundle import ModelBundle

# One between-person SD of the default cohort's signals: a person who always sleeps less and moves less.
LEVEL_SHIFT = {"sleep_duration_h": -0.6, "steps": -2200.0, "active_minutes": -14.0, "mood_ema": -0.9}
NOISE = 1e-3  # a score may fall by this much after a worse week (numerical noise)


@dataclass(frozen=True)
class WorseSleep:
    """Two hours less sleep and 8 points less efficiency on each of the last 7 days."""

    mean_change: float
    lowered: int  # windows whose score fell by more than NOISE
    windows: int


@dataclass(frozen=True)
class StableLevel:
    """The same change on every day (a stable lower level) against only in the last 7 days (a recent change)."""

    level_change: float  # mean risk change for the stable level
    recent_change: float  # mean risk change for the recent drop
    high_before: float  # share of windows in the high band
    high_after: float  # the same with the stable lower level


def worse_sleep(bundle: ModelBundle, values: np.ndarray) -> WorseSleep:
    worse = values.copy()
    sleep, eff = bundle.features.index("sleep_duration_h"), bundle.features.index("sleep_efficiency")
    worse[:, -7:, sleep] = np.clip(worse[:, -7:, sleep] - 2.0, 0, 24)
    worse[:, -7:, eff] = np.clip(worse[:, -7:, eff] - 0.08, 0, 1)
    before, after = bundle.risk(values), bundle.risk(worse)
    return WorseSleep(float((after - before).mean()), int((after < before - NOISE).sum()), len(values))


def stable_level(bundle: ModelBundle, values: np.ndarray) -> StableLevel:
    stable, recent = values.copy(), values.copy()
    for name, delta in LEVEL_SHIFT.items():
        j = bundle.features.index(name)
        stable[:, :, j] = np.clip(stable[:, :, j] + delta, 0, None)
        recent[:, -7:, j] = np.clip(recent[:, -7:, j] + delta, 0, None)
    base, lower_level, recent_drop = bundle.risk(values), bundle.risk(stable), bundle.risk(recent)
    high = bundle.bands.high
    return StableLevel(
        float((lower_level - base).mean()),
        float((recent_drop - base).mean()),
        float((base >= high).mean()),
        float((lower_level >= high).mean()),
    )


# A manic-type week: two hours less sleep and more steps, activity, calls and mobility on each of the last 7 days (about
# one and a half between-person SDs each, as the bipolar cohort's manic prodromes move them).
MANIC_SHIFT = {
    "sleep_duration_h": -2.0,
    "steps": 3500.0,
    "active_minutes": 20.0,
    "calls_count": 2.0,
    "call_duration_min": 10.0,
    "distance_km": 6.0,
    "places_visited": 1.5,
    "time_at_home_frac": -0.12,
}


@dataclass(frozen=True)
class ManicWeek:
    """The share of windows whose risk a manic-type last week raised (by more than NOISE)."""

    raised: int
    windows: int
    mean_change: float
    high_before: float
    high_after: float


def manic_week(bundle: ModelBundle, values: np.ndarray) -> ManicWeek:
    manic = values.copy()
    for name, delta in MANIC_SHIFT.items():
        j = bundle.features.index(name)
        manic[:, -7:, j] = np.clip(manic[:, -7:, j] + delta, 0, None)
    before, after = bundle.risk(values), bundle.risk(manic)
    high = bundle.bands.high
    return ManicWeek(
        int((after > before + NOISE).sum()),
        len(values),
        float((after - before).mean()),
        float((before >= high).mean()),
        float((after >= high).mean()),
    )
