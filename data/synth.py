"""Synthetic cohort with known relapse risk: realistic daily signals driven by a latent prodromal process."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from earlywarn.data import progress
from earlywarn.data.contract import DATE, EVENT, LABEL, PARTICIPANT, SIGNALS, STANDARD_FEATURES
from earlywarn.data.synth_course import (
    DESIGNS,
    DRIFTS,
    MAX_ORACLE_HORIZON,
    SynthConfig,
    _drift_day,
    _latent,
)
from earlywarn.data.synth_signals import (
    _CASE_IRREGULARITY,
    _CASE_SHIFT,
    _COUNTS,
    _EMA,
    _FACTORS,
    _GROUPS,
    _IRREGULAR,
    _LEVELS,
    _PRODROME_EFFECT,
    _WEARABLE,
    _WEEKEND,
    _apply_drift,
    _ar1,
    _direction,
    _episode_kinds,
    _gaps,
)

COHORT_META = "cohort.json"  # the config that generated the cohort and the day its drift starts


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
