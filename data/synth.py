"""Synthetic cohort with known relapse risk: realistic daily signals driven by a latent prodromal process."""

from __future__ import annotations

import datetime as dt
import functools
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from earlywarn.data import progress
from earlywarn.data.contract import DATE, EVENT, LABEL, PARTICIPANT, SIGNALS, STANDARD_FEATURES, Condition

# device-change: one signal is recounted; seasonal: several drift slowly; population: true risk rises;
# signature-change: relapses stop showing in the signals that used to announce them (inputs look the same,
# outcomes diverge from what the model predicts: the model goes stale without any input drift).
Drift = Literal["device-change", "seasonal", "population", "signature-change"]
DRIFTS: tuple[str, ...] = ("device-change", "seasonal", "population", "signature-change")
# relapse: events over time (event outcomes); case-control: cases and controls, a dated 0/1 label on every day.
Design = Literal["relapse", "case-control"]
DESIGNS: tuple[str, ...] = ("relapse", "case-control")
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
COHORT_META = "cohort.json"  # the config that generated the cohort and the day its drift starts
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


@dataclass(frozen=True)
class SynthConfig:
    """How big a cohort to generate, from which seed, with which drift scenario."""

    participants: int = 500
    days: int = 365
    seed: int = 0
    start: dt.date = dt.date(2025, 1, 1)
    drift: Drift | None = None
    drift_start_day: int | None = None  # default: two thirds of the way through
    chunk_participants: int = 5000  # memory is bounded by this, not by the cohort
    base_onset_per_day: float = 1 / 170
    background_hazard: float = 0.0006
    peak_hazard: float = 0.11
    design: Design = "relapse"
    case_share: float = 0.4  # case-control only
    horizon: int = 14  # days ahead the oracle's true risk looks (the default window horizon)
    condition: Condition = "depression"  # bipolar: manic and depressive prodromes (see _MANIC)


@dataclass(frozen=True)
class SynthResult:
    """Where the cohort was written and what it holds."""

    out_dir: Path
    features_path: Path
    outcomes_path: Path
    oracle_path: Path
    participants_path: Path
    n_participants: int
    n_rows: int
    n_events: int
    drift: str | None
    drift_start: dt.date | None


@dataclass
class _Chunk:
    values: np.ndarray  # [n, days, features] float32, NaN = missing
    hazard: np.ndarray  # [n, days] true daily event hazard
    events: np.ndarray  # [n, days] bool
    true_risk: np.ndarray  # [n, days] P(event within the horizon | latent state at the end of the day)
    platform: np.ndarray  # [n] str
    manic: np.ndarray  # [n, days] bool: the person's current or latest prodrome is manic (bipolar only)


def _drift_day(cfg: SynthConfig) -> int:
    return cfg.drift_start_day if cfg.drift_start_day is not None else (2 * cfg.days) // 3


@dataclass
class Latent:
    """Each person's latent course at the end of a day: phase (0 healthy, 1 prodrome, 2 recovery), days into the
    prodrome, severity and recovery days left; `ramp` and `onset` (per-day prodrome onset chance) are the person's own."""

    phase: np.ndarray  # int8
    day_in: np.ndarray  # int32
    severity: np.ndarray  # float32
    refractory: np.ndarray  # int32
    ramp: np.ndarray  # int32, days from onset to full severity
    onset: np.ndarray  # float64, chance per healthy day that a prodrome starts (before drift)

    def copy(self) -> Latent:
        return Latent(*(np.array(getattr(self, f.name), copy=True) for f in fields(self)))


_PLATEAU = 7  # days a prodrome stays at full severity before it can resolve without an event
_EVENT_REFRACTORY, _RESOLVED_REFRACTORY = 30, 10
_EVENT_FLOOR = 0.8  # an event itself disrupts behaviour, then recovery follows
_RECOVERY_DECAY = 0.86
_RECOVERY_HAZARD = 0.3  # shortly after an event, a new one is unlikely: this share of the background hazard


def onset_rate(cfg: SynthConfig, state: Latent, day: int) -> np.ndarray:
    """The chance that a healthy person's prodrome starts on `day` (the population drift quadruples it)."""
    return state.onset * (4.0 if cfg.drift == "population" and day >= _drift_day(cfg) else 1.0)


def begin_day(cfg: SynthConfig, state: Latent, start: np.ndarray) -> np.ndarray:
    """Advance every person by one day up to the event draw (`start`: healthy people whose prodrome starts today);
    returns the day's event hazard."""
    phase, s = state.phase, state.severity
    start = start & (phase == 0)
    phase[start], state.day_in[start] = 1, 0
    pro = phase == 1
    state.day_in[pro] += 1
    s[pro] = np.minimum(1.0, state.day_in[pro] / state.ramp[pro])
    rec = phase == 2
    s[rec] *= _RECOVERY_DECAY
    state.refractory[rec] -= 1
    healed = rec & (state.refractory <= 0) & (s < 0.05)
    phase[healed], s[healed] = 0, 0.0
    h = cfg.background_hazard + np.where(pro, cfg.peak_hazard * s.astype(np.float64) ** 3, 0.0)
    return np.where(phase == 2, cfg.background_hazard * _RECOVERY_HAZARD, h)


def end_day(state: Latent, event: np.ndarray) -> None:
    """After the event draw: an event starts recovery; a prodrome that ran its course without one resolves."""
    pro = state.phase == 1
    resolved = pro & ~event & (state.day_in >= state.ramp + _PLATEAU)
    for mask, refractory, floor in ((event, _EVENT_REFRACTORY, _EVENT_FLOOR), (resolved, _RESOLVED_REFRACTORY, 0.0)):
        state.phase[mask], state.refractory[mask] = 2, refractory
        state.severity[mask] = np.maximum(state.severity[mask], floor)


def _latent(cfg: SynthConfig, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Simulate severity, hazard and events day by day: healthy -> prodrome (ramp) -> event or resolution -> recovery;
    also returns the true risk of an event within the horizon at the end of each day (`true_risk`)."""
    days = cfg.days
    risk = rng.lognormal(0.0, 0.6, n)
    state = Latent(
        phase=np.zeros(n, np.int8),
        day_in=np.zeros(n, np.int32),
        severity=np.zeros(n, np.float32),
        refractory=np.zeros(n, np.int32),
        ramp=rng.integers(10, 22, n).astype(np.int32),  # prodrome length varies by person: 10 days to 3 weeks
        onset=cfg.base_onset_per_day * risk / np.exp(0.18),
    )
    severity = np.zeros((n, days), np.float32)
    hazard = np.zeros((n, days), np.float32)
    events = np.zeros((n, days), bool)
    truth = np.zeros((n, days), np.float32)
    for t in range(days):
        start = rng.random(n) < onset_rate(cfg, state, t)
        h = begin_day(cfg, state, start)
        event = rng.random(n) < h
        end_day(state, event)
        hazard[:, t], events[:, t], severity[:, t] = h, event, state.severity
        truth[:, t] = true_risk(cfg, state, t, cfg.horizon)
    return severity, hazard, events, truth


MAX_ORACLE_HORIZON = 37  # a prodrome and its recovery last at least 37 days: no second onset fits in the horizon


def true_risk(cfg: SynthConfig, state: Latent, day: int, horizon: int) -> np.ndarray:
    """P(event on a day in (day, day + horizon] | each person's latent state at the end of `day`), exactly.

    Without an event the course is fixed except for the day a healthy person's prodrome starts; the chance of no
    event sums, over that day (or none), the chance of the start times the survival along the course it implies.
    Nothing after `day` is read: the same state always gives the same risk."""
    if not 1 <= horizon <= MAX_ORACLE_HORIZON:
        raise ValueError(f"the oracle's horizon must be 1 to {MAX_ORACLE_HORIZON} days, got {horizon}")
    path = state.copy()
    survive_so_far = np.ones(len(state.phase))  # no onset and no event on the days before
    no_event = np.zeros(len(state.phase))
    for k in range(1, horizon + 1):
        healthy = path.phase == 0
        q = np.where(healthy, onset_rate(cfg, path, day + k), 0.0)
        no_event += survive_so_far * q * _prodrome_survival(cfg, path.ramp, horizon - k + 1)
        h = begin_day(cfg, path, np.zeros(len(q), bool))
        end_day(path, np.zeros(len(q), bool))
        survive_so_far *= (1 - q) * (1 - h)
    return 1.0 - (no_event + survive_so_far)


def _prodrome_survival(cfg: SynthConfig, ramp: np.ndarray, days: int) -> np.ndarray:
    """P(no event over `days` days of a prodrome that starts on the first of them), per person's ramp length."""
    ramps, table = _prodrome_survival_table(cfg, tuple(np.unique(ramp).tolist()))
    return table[np.searchsorted(ramps, ramp), days]


@functools.lru_cache(maxsize=64)
def _prodrome_survival_table(cfg: SynthConfig, ramps: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """([R] ramp lengths, [R, MAX_ORACLE_HORIZON + 1] survival over 0..MAX_ORACLE_HORIZON days from a prodrome's start)."""
    r = len(ramps)
    fresh = Latent(
        phase=np.zeros(r, np.int8),
        day_in=np.zeros(r, np.int32),
        severity=np.zeros(r, np.float32),
        refractory=np.zeros(r, np.int32),
        ramp=np.asarray(ramps, np.int32),
        onset=np.zeros(r),
    )
    table = np.ones((r, MAX_ORACLE_HORIZON + 1))
    for k in range(1, MAX_ORACLE_HORIZON + 1):
        table[:, k] = table[:, k - 1] * (1 - begin_day(cfg, fresh, np.full(r, k == 1)))
        end_day(fresh, np.zeros(r, bool))
    return np.asarray(ramps), table


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


def _case_control(cfg: SynthConfig, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A lasting, person-specific shift for cases (no events): severity fluctuates slowly around each case's level."""
    case = rng.random(n) < cfg.case_share
    level = np.where(case, rng.uniform(*_CASE_SHIFT, n), 0.0)
    wobble = 1.0 + 0.3 * _ar1(rng, (n, cfg.days, 1), 0.95)[:, :, 0]
    severity = np.clip(level[:, None] * wobble, 0.0, 1.0).astype(np.float32)
    status = np.repeat(case[:, None], cfg.days, axis=1).astype(np.float32)
    return severity, status, np.zeros((n, cfg.days), bool), np.full((n, cfg.days), np.nan, np.float32)


def _chunk(cfg: SynthConfig, rng: np.random.Generator, n: int) -> _Chunk:
    days, feats = cfg.days, STANDARD_FEATURES
    severity, hazard, events, truth = _case_control(cfg, rng, n) if cfg.design == "case-control" else _latent(cfg, rng, n)
    manic = _episode_kinds(cfg, severity, rng)
    irregular = 1.0 + (_CASE_IRREGULARITY - 1.0) * (hazard[:, :1] > 0) if cfg.design == "case-control" else np.ones((n, 1))
    drift_day = _drift_day(cfg)
    if cfg.drift == "signature-change":
        # Behaviour follows someone else's course from the drift day on: the same mix of prodromes in the
        # population, but no longer the prodrome of the person whose events are recorded.
        severity = severity.copy()
        severity[:, drift_day:] = severity[rng.permutation(n), drift_day:]
    dates = pd.date_range(cfg.start, periods=days, freq="D")
    weekend = np.asarray(dates.dayofweek >= 5, np.float32)
    factors = _ar1(rng, (n, days, 3), 0.5)
    idio = _ar1(rng, (n, days, len(feats)), 0.3)
    # Each person expresses the prodrome in their own subset of signal groups.
    strong = rng.random((n, len(_GROUPS))) < 0.55
    strong[np.arange(n), rng.integers(0, len(_GROUPS), n)] = True
    group_weight = np.where(strong, rng.uniform(0.7, 1.4, strong.shape), rng.uniform(0.0, 0.25, strong.shape))
    platform = np.where(rng.random(n) < 0.6, "ios", "android")
    values = np.empty((n, days, len(feats)), np.float32)
    for j, name in enumerate(feats):
        mean, between, within = _LEVELS[name]
        sig = SIGNALS[name]
        base = mean + between * rng.standard_normal(n)
        loading = np.asarray(_FACTORS.get(name, (0.0, 0.0, 0.0)), np.float32)
        unique = np.sqrt(max(1e-3, 1 - float(loading @ loading)))
        noise = factors @ loading + unique * idio[:, :, j]
        wk = _WEEKEND.get(name, 0.0) * rng.uniform(0.5, 1.5, n)
        personal = group_weight[:, _GROUPS.index(sig.group)] * rng.uniform(0.7, 1.3, n)
        spread = irregular if name in _IRREGULAR else 1.0
        x = (
            base[:, None]
            + within * (spread * noise + wk[:, None] * weekend[None, :])
            + within * _PRODROME_EFFECT * personal[:, None] * _direction(cfg, name, manic) * severity
        )
        if name == "screen_time_min":
            x = x * np.where(platform == "android", 1.1, 1.0)[:, None]  # platforms measure screen time differently
        values[:, :, j] = x
    _apply_drift(cfg, values, dates, drift_day)
    for j, name in enumerate(feats):
        sig = SIGNALS[name]
        col = np.clip(values[:, :, j], sig.low, sig.high)
        values[:, :, j] = np.round(col) if name in _COUNTS else col
    # Missingness: wearable non-wear runs, phone gaps, skipped EMAs; all rise as a relapse approaches.
    wear = np.array([feats.index(f) for f in _WEARABLE])
    ema = np.array([feats.index(f) for f in _EMA])
    phone = np.array([j for j in range(len(feats)) if j not in set(wear) | set(ema)])
    nonwear = _gaps(rng, rng.uniform(0.005, 0.04, n)[:, None] * (1 + 3 * severity), 0.3)
    phone_gap = _gaps(rng, np.full((n, 1), 0.01) * (1 + 2 * severity), 0.45)
    adherence = rng.uniform(0.45, 0.95, n)[:, None] * (1 - 0.5 * severity)
    skipped = rng.random((n, days)) > adherence
    for cols, mask in ((wear, nonwear), (phone, phone_gap), (ema, skipped)):
        sub = values[:, :, cols]
        sub[mask] = np.nan
        values[:, :, cols] = sub
    sporadic = rng.random(values.shape) < 0.03
    values[sporadic] = np.nan
    return _Chunk(values, hazard, events, truth, platform, manic)


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


def synth(cfg: SynthConfig, out_dir: str | Path) -> SynthResult:
    """Generate the cohort and write features.parquet, outcomes.csv, oracle.parquet, participants.csv and cohort.json."""
    if cfg.participants < 1 or cfg.days < 1:
        raise ValueError("participants and days must be positive")
    if cfg.design not in DESIGNS:
        raise ValueError(f"design must be one of {DESIGNS}, got {cfg.design!r}")
    if not 1 <= cfg.horizon <= MAX_ORACLE_HORIZON:
        raise ValueError(f"horizon must be 1 to {MAX_ORACLE_HORIZON} days, got {cfg.horizon}")
    if cfg.drift is not None and cfg.drift not in DRIFTS:
        raise ValueError(f"drift must be one of {DRIFTS}, got {cfg.drift!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {k: out / f for k, f in (("features", "features.parquet"), ("oracle", "oracle.parquet"))}
    dates = pd.date_range(cfg.start, periods=cfg.days, freq="D").to_numpy()
    writers: dict[str, pq.ParquetWriter] = {}
    outcome_parts, people = [], []
    n_events = 0
    width = len(str(cfg.participants))
    try:
        firsts = range(0, cfg.participants, cfg.chunk_participants)
        for first in progress.track(firsts, f"synth {cfg.participants:,} participants"):
            n = min(cfg.chunk_participants, cfg.participants - first)
            rng = np.random.default_rng([cfg.seed, first])
            chunk = _chunk(cfg, rng, n)
            ids = np.array([f"P{first + i:0{width}d}" for i in range(n)], dtype=object)
            pid = np.repeat(ids, cfg.days)
            day = np.tile(dates, n)
            feats = pd.DataFrame(chunk.values.reshape(n * cfg.days, -1), columns=list(STANDARD_FEATURES))
            feats.insert(0, DATE, day)
            feats.insert(0, PARTICIPANT, pid)
            oracle = pd.DataFrame(
                {
                    PARTICIPANT: pid,
                    DATE: day,
                    "hazard": chunk.hazard.reshape(-1),
                    "true_risk": chunk.true_risk.reshape(-1),
                    "horizon": np.full(n * cfg.days, cfg.horizon, np.int16),
                }
            )
            # A case-control cohort has no day-level oracle: the latent case status would score a perfect 1.0.
            tables = (("features", feats),) if cfg.design == "case-control" else (("features", feats), ("oracle", oracle))
            for key, frame in tables:
                table = pa.Table.from_pandas(frame, preserve_index=False)
                if key not in writers:
                    writers[key] = pq.ParquetWriter(paths[key], table.schema)
                writers[key].write_table(table)
            if cfg.design == "case-control":  # the person's diagnosis as a dated label on each of their days
                case = chunk.hazard[:, 0] > 0
                n_events += int(case.sum())
                outcome_parts.append(pd.DataFrame({PARTICIPANT: pid, DATE: day, LABEL: np.repeat(case.astype(int), cfg.days)}))
            else:
                who, when = np.nonzero(chunk.events)
                n_events += len(who)
                outcome_parts.append(pd.DataFrame({PARTICIPANT: ids[who], DATE: dates[when], EVENT: "relapse"}))
            people.append(pd.DataFrame({PARTICIPANT: ids, "platform": chunk.platform}))
    finally:
        for w in writers.values():
            w.close()
    outcomes = pd.concat(outcome_parts, ignore_index=True).sort_values([PARTICIPANT, DATE])
    outcomes[DATE] = pd.to_datetime(outcomes[DATE]).dt.strftime("%Y-%m-%d")
    outcomes.to_csv(out / "outcomes.csv", index=False)
    pd.concat(people, ignore_index=True).to_csv(out / "participants.csv", index=False)
    drift_start = (cfg.start + dt.timedelta(days=_drift_day(cfg))) if cfg.drift else None
    meta = {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in asdict(cfg).items()}
    meta |= {"drift_start": drift_start.isoformat() if drift_start else None, "events": n_events}
    (out / COHORT_META).write_text(json.dumps(meta, indent=2))
    return SynthResult(
        out_dir=out,
        features_path=paths["features"],
        outcomes_path=out / "outcomes.csv",
        oracle_path=paths["oracle"],
        participants_path=out / "participants.csv",
        n_participants=cfg.participants,
        n_rows=cfg.participants * cfg.days,
        n_events=n_events,
        drift=cfg.drift,
        drift_start=drift_start,
    )
