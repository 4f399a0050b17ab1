"""The synthetic cohort's latent course: onsets, prodromes, events and recovery as one day step (simulation and oracle)."""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, fields
from typing import Literal

import numpy as np

from earlywarn.data.contract import Condition

Drift = Literal["device-change", "seasonal", "population", "signature-change"]
DRIFTS: tuple[str, ...] = ("device-change", "seasonal", "population", "signature-change")
# relapse: events over time (event outcomes); case-control: cases and controls, a dated 0/1 label on every day.
Design = Literal["relapse", "case-control"]
DESIGNS: tuple[str, ...] = ("relapse", "case-control")


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


_EVENT_REFRACTORY, _RESOLVED_REFRACTORY = 30, 10
_PLATEAU = 7  # days a prodrome stays at full severity before it can resolve without an event


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
