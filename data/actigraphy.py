"""Raw wearable import: one minute-level activity-count file per participant -> the contract's daily table.

Published definitions (cited in docs/data-contract.md): non-wear as long runs of zero counts (after Choi et al. 2011),
sleep/wake by Cole–Kripke (1992, 1-minute epochs, counts/100 capped at 300 as ActiLife applies it), activity bands
after Freedson et al. 1998 (≥ 1952 counts/min) and Matthews et al. 2008 (< 100 counts/min), and the nonparametric
circadian metrics of Witting et al. 1990 and Van Someren et al. 1999 (IS, IV, RA, L5, M10 and their onsets)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from earlywarn.data import progress
from earlywarn.data.contract import DATE, LABEL, PARTICIPANT
from earlywarn.data.validation import ContractError, Problem, validate_features, validate_outcomes

MINUTES = 1440
CK_WEIGHTS = np.array([106, 54, 58, 76, 230, 74, 67]) * 0.001  # epochs t-4 .. t+2
ACTIVE_COUNTS = 1952  # counts/min, moderate-to-vigorous (Freedson 1998)
SEDENTARY_COUNTS = 100  # counts/min (Matthews 2008)
REST_MEDIAN_COUNTS = 20  # the rest interval: where the 60-minute rolling median of counts stays below this
CIRCADIAN = (
    "circadian_is",
    "circadian_iv",
    "circadian_ra",
    "circadian_l5",
    "circadian_m10",
    "circadian_l5_onset_h",
    "circadian_m10_onset_h",
)


@dataclass(frozen=True)
class ActigraphyImportConfig:
    """Where the per-participant minute files are, where the daily table goes, and the documented rules' settings."""

    source: Path  # one <participant_id>.csv per participant: timestamp, activity (other columns ignored)
    out: Path
    labels: Path | None = None  # participant_id,label (one per person) or participant_id,date,label
    nonwear_minutes: int = 90  # a run of zero counts at least this long is non-wear
    min_wear_share: float = 0.7  # a day worn less than this is missing, never zeros
    circadian_days: int = 7  # trailing window of the circadian metrics (causal: only days up to this one)
    sleep_gap_minutes: int = 30  # wake gaps up to this long stay inside one sleep episode


@dataclass(frozen=True)
class ActigraphyImportResult:
    features_path: Path
    outcomes_path: Path | None
    n_participants: int
    n_days: int
    epochs_seconds: dict[str, float]


def to_minutes(frame: pd.DataFrame, source: str) -> tuple[pd.Series, float]:
    """A participant's raw epochs -> counts per minute on a complete minute grid (NaN where nothing was recorded),
    and the inferred epoch length in seconds (30 s to 5 min)."""
    for col in ("timestamp", "activity"):
        if col not in frame.columns:
            raise ContractError([Problem(source, None, col, "required column is missing")], 1)
    stamps = pd.to_datetime(frame["timestamp"], errors="coerce")
    counts = pd.to_numeric(frame["activity"], errors="coerce")
    bad = np.flatnonzero(stamps.isna() | counts.isna() | (counts < 0))
    if len(bad):
        message = "unparseable time or a negative/non-numeric count"
        problems = [Problem(source, int(r) + 1, "timestamp/activity", message) for r in bad[:10]]
        raise ContractError(problems, len(bad))
    order = np.argsort(stamps.to_numpy(), kind="stable")
    stamps, counts = stamps.iloc[order].reset_index(drop=True), counts.iloc[order].reset_index(drop=True)
    epoch = (
        float(np.median(np.diff(stamps.to_numpy()).astype("timedelta64[ms]").astype(np.int64)) / 1000)
        if len(stamps) > 1
        else 60.0
    )
    if not 30 <= epoch <= 300:
        raise ContractError([Problem(source, None, "timestamp", f"epoch length {epoch:g} s is outside 30 s – 5 min")], 1)
    if epoch <= 60:
        per_minute = counts.groupby(stamps.dt.floor("min")).sum()
    else:  # a long epoch's count is spread evenly over its minutes
        k = round(epoch / 60)
        spread = np.repeat(counts.to_numpy() / k, k)
        minutes = (stamps.to_numpy()[:, None] + np.arange(k)[None, :] * np.timedelta64(60, "s")).reshape(-1)
        per_minute = pd.Series(spread, index=pd.DatetimeIndex(minutes).floor("min")).groupby(level=0).sum()
    start, end = per_minute.index.min().normalize(), per_minute.index.max().normalize() + pd.Timedelta(days=1)
    grid = pd.date_range(start, end, freq="min", inclusive="left")
    return per_minute.reindex(grid), epoch


def nonwear(counts: np.ndarray, min_run: int) -> np.ndarray:
    """Minutes not worn: unrecorded, or inside a run of at least `min_run` zero counts."""
    zero = np.nan_to_num(counts, nan=0.0) == 0
    edges = np.diff(np.r_[0, zero.astype(np.int8), 0])
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    out = np.isnan(counts)
    for a, b in zip(starts, stops, strict=True):
        if b - a >= min_run:
            out[a:b] = True
    return out


def cole_kripke(counts: np.ndarray) -> np.ndarray:
    """Sleep (True) or wake per 1-minute epoch: D = 0.001·(106·A₋₄ + 54·A₋₃ + 58·A₋₂ + 76·A₋₁ + 230·A₀ + 74·A₊₁ + 67·A₊₂) < 1,
    with A = min(counts / 100, 300)."""
    a = np.minimum(np.nan_to_num(counts, nan=0.0) / 100.0, 300.0)
    padded = np.r_[np.zeros(4), a, np.zeros(2)]
    d = sum(w * padded[i : i + len(a)] for i, w in enumerate(CK_WEIGHTS))
    return d < 1.0


def _main_sleep(asleep: np.ndarray, gap: int) -> tuple[int, int] | None:
    """The longest sleep episode (sleep runs joined across wake gaps up to `gap` minutes): [first, last] minute."""
    idx = np.flatnonzero(asleep)
    if not len(idx):
        return None
    breaks = np.flatnonzero(np.diff(idx) > gap + 1)
    starts, ends = np.r_[idx[0], idx[breaks + 1]], np.r_[idx[breaks], idx[-1]]
    best = int(np.argmax(ends - starts))
    return int(starts[best]), int(ends[best])


def _hourly_profile(counts: np.ndarray, worn: np.ndarray) -> np.ndarray:
    """[days, 24] mean counts per clock hour over worn minutes (NaN where an hour was not worn)."""
    days = len(counts) // MINUTES
    values = np.where(worn, counts, np.nan)[: days * MINUTES].reshape(days, 24, 60)
    seen = np.isfinite(values).sum(axis=2)
    return np.where(seen > 0, np.nansum(values, axis=2) / np.maximum(seen, 1), np.nan)


def circadian(hourly: np.ndarray) -> dict[str, float]:
    """IS, IV (Witting 1990), L5, M10, RA and the onsets of L5/M10 (Van Someren 1999) from [days, 24] hourly means."""
    x = hourly.reshape(-1)
    x = x[np.isfinite(x)]
    out = dict.fromkeys(CIRCADIAN, float("nan"))
    if len(x) < 48 or np.var(x) == 0:
        return out
    n, mean = len(x), x.mean()
    profile = np.nanmean(hourly, axis=0)
    if not np.isfinite(profile).all():
        return out
    out["circadian_is"] = float(n * np.sum((profile - mean) ** 2) / (24 * np.sum((x - mean) ** 2)))
    out["circadian_iv"] = float(n * np.sum(np.diff(x) ** 2) / ((n - 1) * np.sum((x - mean) ** 2)))
    circular = np.r_[profile, profile]
    l5 = np.array([circular[h : h + 5].mean() for h in range(24)])
    m10 = np.array([circular[h : h + 10].mean() for h in range(24)])
    lo, hi = float(l5.min()), float(m10.max())
    out |= {
        "circadian_l5": lo,
        "circadian_m10": hi,
        "circadian_l5_onset_h": float(l5.argmin()),
        "circadian_m10_onset_h": float(m10.argmax()),
    }
    out["circadian_ra"] = float((hi - lo) / (hi + lo)) if hi + lo > 0 else float("nan")
    return out


def daily_features(per_minute: pd.Series, cfg: ActigraphyImportConfig) -> pd.DataFrame:
    """One row per calendar day: wear share, the standard activity and sleep features, the circadian metrics."""
    counts = per_minute.to_numpy(float)
    days = pd.DatetimeIndex(per_minute.index[::MINUTES])
    worn = ~nonwear(counts, cfg.nonwear_minutes)
    asleep = cole_kripke(counts) & worn
    # Cole-Kripke alone scores quiet daytime minutes as sleep; the night is first found as a sustained rest interval.
    median = pd.Series(np.where(worn, counts, np.nan)).rolling(60, center=True, min_periods=30).median().to_numpy()
    rest = worn & (np.nan_to_num(median, nan=np.inf) < REST_MEDIAN_COUNTS)
    episodes = [_episode(asleep, rest, d, cfg.sleep_gap_minutes) for d in range(len(days))]
    in_bed = np.zeros(len(counts), bool)
    for episode in episodes:
        if episode is not None:
            in_bed[episode[0] : episode[1]] = True
    hourly = _hourly_profile(counts, worn)
    rows = []
    for d, day in enumerate(days):
        today = slice(d * MINUTES, (d + 1) * MINUTES)
        row: dict[str, float] = {"wear_share": float(worn[today].mean())}
        if row["wear_share"] >= cfg.min_wear_share:
            row |= _sleep(asleep, episodes[d], d)
            awake, c = worn[today] & ~in_bed[today], counts[today]
            row["active_minutes"] = float((awake & (c >= ACTIVE_COUNTS)).sum())
            row["sedentary_minutes"] = float((awake & (c < SEDENTARY_COUNTS)).sum())
            row |= circadian(hourly[max(0, d - cfg.circadian_days + 1) : d + 1])
        rows.append({DATE: day} | row)
    return pd.DataFrame(rows)


def _episode(asleep: np.ndarray, rest: np.ndarray, d: int, gap: int) -> tuple[int, int] | None:
    """Day d's sleep episode: the longest rest interval in the noon-to-noon window ending at noon on day d, widened by
    `gap` minutes each side, then bounded by its first and last Cole-Kripke sleep minute."""
    lo = max(0, d * MINUTES - MINUTES // 2)
    core = _main_sleep(rest[lo : d * MINUTES + MINUTES // 2], gap)
    if core is None or core[1] - core[0] < 120:
        return None
    a, b = max(0, lo + core[0] - gap), min(len(asleep), lo + core[1] + 1 + gap)
    inside = _main_sleep(asleep[a:b], gap)
    return None if inside is None else (a + inside[0], a + inside[1] + 1)


def _sleep(asleep: np.ndarray, episode: tuple[int, int] | None, d: int) -> dict[str, float]:
    if episode is None:
        return {}
    a, b = episode
    slept = int(asleep[a:b].sum())
    midpoint = (((a + b) / 2.0 - d * MINUTES) / 60.0) % 24.0
    return {"sleep_duration_h": slept / 60.0, "sleep_efficiency": slept / (b - a), "sleep_midpoint_h": midpoint}


def _labels(path: Path, features: pd.DataFrame) -> pd.DataFrame:
    """One label per person becomes a dated label on each of their days; dated labels are kept as given."""
    raw = pd.read_csv(path, dtype={PARTICIPANT: str})
    if DATE in raw.columns:
        return raw[[PARTICIPANT, DATE, LABEL]]
    return features[[PARTICIPANT, DATE]].merge(raw[[PARTICIPANT, LABEL]], on=PARTICIPANT, how="inner")


def import_actigraphy(cfg: ActigraphyImportConfig) -> ActigraphyImportResult:
    """Convert every `<participant_id>.csv` in the source folder; write features.csv (and outcomes.csv)."""
    files = sorted(cfg.source.glob("*.csv"))
    if not files:
        raise ContractError([Problem(str(cfg.source), None, None, "no <participant_id>.csv files found")], 1)
    parts, epochs = [], {}
    for path in progress.track(files, f"import {len(files)} actigraphy files"):
        per_minute, epochs[path.stem] = to_minutes(pd.read_csv(path), str(path))
        parts.append(daily_features(per_minute, cfg).assign(**{PARTICIPANT: path.stem}))
    table = pd.concat(parts, ignore_index=True)
    table = table[[PARTICIPANT, DATE, *[c for c in table.columns if c not in (PARTICIPANT, DATE)]]]
    features = validate_features(table, source="actigraphy import")
    cfg.out.mkdir(parents=True, exist_ok=True)
    features_path = cfg.out / "features.csv"
    features.assign(**{DATE: features[DATE].dt.strftime("%Y-%m-%d")}).to_csv(features_path, index=False)
    outcomes_path = None
    if cfg.labels is not None:
        outcomes = validate_outcomes(_labels(cfg.labels, features), set(features[PARTICIPANT]), source=str(cfg.labels))
        outcomes_path = cfg.out / "outcomes.csv"
        outcomes.assign(**{DATE: outcomes[DATE].dt.strftime("%Y-%m-%d")}).to_csv(outcomes_path, index=False)
    return ActigraphyImportResult(features_path, outcomes_path, len(files), len(features), epochs)
