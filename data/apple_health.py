"""Apple Health export import: one person's `export.xml` (Health app > profile > Export All Health Data) to daily rows.

Read as a stream (exports run to gigabytes). Each record counts on the calendar day of its own local time stamp.
Steps and active energy overlap across sources (an iPhone and a Watch both count the same walk), so a day takes the
single source with the largest total, not the sum. Sleep: the asleep intervals (any stage) of a night, joined when
less than 2 h apart, make one episode, assigned to the day it ends; duration, midpoint and, where the night also has
in-bed records, efficiency (asleep over the in-bed span). Apple records SDNN, not RMSSD: heart-rate variability goes
to its own column `hrv_sdnn_ms` (a custom feature), never into `hrv_rmssd_ms`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from defusedxml.ElementTree import iterparse  # an export is untrusted input: no entity expansion, no DTD

from earlywarn.data import progress
from earlywarn.data.contract import DATE, PARTICIPANT
from earlywarn.data.validation import ContractError, Problem, validate_features

QUANTITIES = {  # HealthKit type -> (column, how a day is made, the unit the export must use)
    "HKQuantityTypeIdentifierStepCount": ("steps", "sum_by_source", "count"),
    "HKQuantityTypeIdentifierActiveEnergyBurned": ("active_energy_kcal", "sum_by_source", "kcal"),
    "HKQuantityTypeIdentifierRestingHeartRate": ("resting_hr_bpm", "mean", "count/min"),
    "HKQuantityTypeIdentifierHeartRateVariabilitySDNN": ("hrv_sdnn_ms", "mean", "ms"),
}
SLEEP = "HKCategoryTypeIdentifierSleepAnalysis"
IN_BED = "HKCategoryValueSleepAnalysisInBed"
AWAKE = "HKCategoryValueSleepAnalysisAwake"
EPISODE_GAP = pd.Timedelta(hours=2)


@dataclass(frozen=True)
class AppleHealthImportConfig:
    export: Path  # export.xml
    participant_id: str
    out: Path


@dataclass(frozen=True)
class AppleHealthImportResult:
    features_path: Path
    n_days: int
    n_records: int


def _local(stamp: str) -> pd.Timestamp:
    """'2025-03-01 23:10:00 +0100' -> the wall-clock time as written (the person's own day)."""
    return pd.Timestamp(stamp[:19])


def _records(path: Path) -> tuple[list[tuple[str, str, pd.Timestamp, float]], list[tuple[str, pd.Timestamp, pd.Timestamp]], int]:
    """(quantity rows: column, source, start, value), (sleep intervals: value, start, end), records read."""
    quantities, sleep, n, problems = [], [], 0, []
    events = iterparse(path, events=("end",))
    for _, elem in progress.track(events, f"read {path.name}"):
        if elem.tag != "Record":
            continue
        n += 1
        kind = elem.get("type", "")
        try:
            if kind in QUANTITIES:
                column, _, unit = QUANTITIES[kind]
                if elem.get("unit") != unit:
                    problems.append(Problem(str(path), n, kind, f"unit {elem.get('unit')!r}, expected {unit!r}"))
                else:
                    quantities.append(
                        (column, elem.get("sourceName", ""), _local(elem.get("startDate", "")), float(elem.get("value", "")))
                    )
            elif kind == SLEEP:
                sleep.append((elem.get("value", ""), _local(elem.get("startDate", "")), _local(elem.get("endDate", ""))))
        except ValueError as err:
            problems.append(Problem(str(path), n, kind, f"unreadable record ({err})"))
        elem.clear()
    if problems:
        raise ContractError(problems)
    return quantities, sleep, n


def _quantity_days(quantities: list[tuple[str, str, pd.Timestamp, float]]) -> pd.DataFrame:
    q = pd.DataFrame(quantities, columns=["column", "source", "start", "value"]).assign(day=lambda f: f["start"].dt.normalize())
    parts = []
    for column, rule, _ in QUANTITIES.values():
        mine = q[q["column"] == column]
        if mine.empty:
            continue
        if rule == "sum_by_source":  # the source that counted most that day, not the sum of overlapping ones
            per_day = mine.groupby(["day", "source"])["value"].sum().groupby(level="day").max()
        else:
            per_day = mine.groupby("day")["value"].mean()
        parts.append(per_day.rename(column))
    return pd.concat(parts, axis=1) if parts else pd.DataFrame()


def _sleep_days(sleep: list[tuple[str, pd.Timestamp, pd.Timestamp]]) -> pd.DataFrame:
    s = pd.DataFrame(sleep, columns=["value", "start", "end"])
    asleep = s[~s["value"].isin([IN_BED, AWAKE])].sort_values("start")
    if asleep.empty:
        return pd.DataFrame()
    episode = (asleep["start"] - asleep["end"].cummax().shift()).gt(EPISODE_GAP).cumsum()
    rows = []
    for _, night in asleep.groupby(episode):
        start, end = night["start"].min(), night["end"].max()
        hours = float((night["end"] - night["start"]).dt.total_seconds().sum() / 3600)
        mid = start + (end - start) / 2
        bed = s[(s["value"] == IN_BED) & (s["end"] > start - EPISODE_GAP) & (s["start"] < end + EPISODE_GAP)]
        span = (max(bed["end"].max(), end) - min(bed["start"].min(), start)).total_seconds() / 3600 if len(bed) else np.nan
        rows.append((end.normalize(), min(hours, 24.0), mid.hour + mid.minute / 60, min(1.0, hours / span) if span else np.nan))
    frame = pd.DataFrame(rows, columns=["day", "sleep_duration_h", "sleep_midpoint_h", "sleep_efficiency"])
    return frame.groupby("day").agg({"sleep_duration_h": "max", "sleep_midpoint_h": "last", "sleep_efficiency": "last"})


def import_apple_health(cfg: AppleHealthImportConfig) -> AppleHealthImportResult:
    """Read the export, make one row per day, validate against the contract and write features.csv."""
    quantities, sleep, n = _records(cfg.export)
    days = pd.concat([_quantity_days(quantities), _sleep_days(sleep)], axis=1)
    if days.empty:
        raise ContractError([Problem(str(cfg.export), None, None, "no step, energy, heart-rate, HRV or sleep records")])
    table = days.sort_index().rename_axis(DATE).reset_index().assign(**{PARTICIPANT: cfg.participant_id})
    table = table[[PARTICIPANT, DATE, *[c for c in table.columns if c not in (PARTICIPANT, DATE)]]]
    features = validate_features(table, source=f"{cfg.export} (per day)")
    cfg.out.mkdir(parents=True, exist_ok=True)
    path = cfg.out / "features.csv"
    features.assign(**{DATE: features[DATE].dt.strftime("%Y-%m-%d")}).to_csv(path, index=False)
    return AppleHealthImportResult(path, len(features), n)
