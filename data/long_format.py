"""Long-format import: `participant_id, timestamp, signal, value` rows, as app backends export them, to daily rows.

A measurement belongs to the calendar day of its timestamp as written (the device's local time: an offset such as
+02:00 is kept, not converted to UTC, so a night stays on the person's own day). Each signal has one rule for
turning a day's measurements into the day's value (docs/data-contract.md lists them)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from earlywarn.data import progress
from earlywarn.data.contract import DATE, PARTICIPANT, SIGNALS
from earlywarn.data.validation import ContractError, Problem, validate_features

# Counts and durations add up over a day; levels, shares and ratings are averaged; a sleep episode's figures are
# reported once for the night that ends on the day (the last report wins); distinct places take the day's maximum.
RULES: dict[str, str] = {
    "sleep_duration_h": "last",
    "sleep_midpoint_h": "last",
    "sleep_efficiency": "last",
    "steps": "sum",
    "active_minutes": "sum",
    "sedentary_minutes": "sum",
    "screen_time_min": "sum",
    "screen_unlocks": "sum",
    "night_screen_min": "sum",
    "calls_count": "sum",
    "call_duration_min": "sum",
    "time_at_home_frac": "mean",
    "distance_km": "sum",
    "location_entropy": "mean",
    "places_visited": "max",
    "resting_hr_bpm": "mean",
    "hrv_rmssd_ms": "mean",
    "mood_ema": "mean",
    "anxiety_ema": "mean",
}
COLUMNS = (PARTICIPANT, "timestamp", "signal", "value")
CHUNK_ROWS = 500_000


@dataclass(frozen=True)
class LongImportConfig:
    source: Path  # CSV with participant_id, timestamp, signal, value (other columns ignored)
    out: Path


@dataclass(frozen=True)
class LongImportResult:
    features_path: Path
    n_participants: int
    n_days: int
    n_measurements: int


def _checked(chunk: pd.DataFrame, source: str, first_row: int) -> tuple[pd.DataFrame, list[Problem]]:
    """The chunk's usable rows (day, participant, signal, value) and a problem for every row that is not."""
    problems: list[Problem] = []
    rows = pd.Series(range(first_row, first_row + len(chunk)), index=chunk.index)
    unknown = ~chunk["signal"].isin(list(RULES))
    problems += [
        Problem(source, int(r), "signal", f"unknown signal {s!r}; known: the contract's signals (docs/data-contract.md)")
        for r, s in zip(rows[unknown], chunk.loc[unknown, "signal"], strict=True)
    ]
    value = pd.to_numeric(chunk["value"], errors="coerce")
    stamp = pd.to_datetime(chunk["timestamp"].astype(str).str.slice(0, 19), errors="coerce", format="ISO8601")
    for column, bad in (("value", value.isna() & chunk["value"].notna()), ("timestamp", stamp.isna())):
        problems += [Problem(source, int(r), column, f"not a {column}") for r in rows[bad & ~unknown]]
    missing_id = chunk[PARTICIPANT].isna() | (chunk[PARTICIPANT].astype(str).str.strip() == "")
    problems += [Problem(source, int(r), PARTICIPANT, "empty") for r in rows[missing_id]]
    ok = ~unknown & stamp.notna() & value.notna() & ~missing_id
    out = pd.DataFrame(
        {PARTICIPANT: chunk.loc[ok, PARTICIPANT].astype(str), DATE: stamp[ok].dt.normalize(), "signal": chunk.loc[ok, "signal"]}
    )
    return out.assign(value=value[ok].astype(float)), problems


def import_long(cfg: LongImportConfig) -> LongImportResult:
    """Aggregate every measurement to its participant-day by the signal's rule, validate, and write features.csv."""
    source = str(cfg.source)
    header = pd.read_csv(cfg.source, nrows=0).columns
    if missing := [c for c in COLUMNS if c not in header]:
        raise ContractError(
            [Problem(source, None, c, "missing column (needs participant_id, timestamp, signal, value)") for c in missing]
        )
    parts, problems, n = [], [], 0
    chunks = pd.read_csv(cfg.source, usecols=list(COLUMNS), dtype={PARTICIPANT: str, "signal": str}, chunksize=CHUNK_ROWS)
    for chunk in progress.track(chunks, f"read {cfg.source.name}"):
        usable, found = _checked(chunk, source, n + 1)
        parts.append(usable)
        problems += found
        n += len(chunk)
    if problems:
        raise ContractError(problems)
    rows = pd.concat(parts, ignore_index=True)
    daily = []
    for rule in sorted(set(RULES.values())):
        mine = rows[rows["signal"].map(RULES) == rule]
        if not mine.empty:
            daily.append(mine.groupby([PARTICIPANT, DATE, "signal"], sort=False)["value"].agg(rule))
    table = pd.concat(daily).unstack("signal").reset_index() if daily else pd.DataFrame(columns=[PARTICIPANT, DATE])
    table = table[[PARTICIPANT, DATE, *[s for s in SIGNALS if s in table.columns]]].sort_values([PARTICIPANT, DATE])
    features = validate_features(table.reset_index(drop=True), source=f"{source} (per day)")
    cfg.out.mkdir(parents=True, exist_ok=True)
    path = cfg.out / "features.csv"
    features.assign(**{DATE: features[DATE].dt.strftime("%Y-%m-%d")}).to_csv(path, index=False)
    return LongImportResult(path, int(features[PARTICIPANT].nunique()), len(features), n)
