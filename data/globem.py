"""Adapter from GLOBEM (RAPIDS per-modality CSVs) to the earlywarn data contract."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from earlywarn.data import progress
from earlywarn.data.contract import DATE, LABEL, PARTICIPANT, SIGNALS
from earlywarn.data.validation import validate_features, validate_outcomes


def _col(modality: str, name: str, segment: str = "allday") -> tuple[str, str]:
    prefix = {
        "sleep": "f_slp:fitbit_sleep_",
        "steps": "f_steps:fitbit_steps_",
        "screen": "f_screen:phone_screen_",
        "call": "f_call:phone_calls_",
        "location": "f_loc:phone_locations_",
        "bluetooth": "f_blue:phone_bluetooth_",
    }
    return modality, f"{prefix[modality]}{name}:{segment}"


def _sum_counts(a: pd.Series, b: pd.Series) -> pd.Series:
    """Sum where at least one side was recorded; RAPIDS leaves a call type empty when it did not happen."""
    both_missing = a.isna() & b.isna()
    return (a.fillna(0) + b.fillna(0)).mask(both_missing)


def _sleep_midpoint(bed_prev_day_min: pd.Series, wake_min: pd.Series) -> pd.Series:
    # RAPIDS bedtimes count minutes from midnight of the previous day, wake times from midnight of this day.
    mid = ((bed_prev_day_min - 1440) + wake_min) / 2 / 60
    return mid % 24


# Each output feature: the RAPIDS columns it needs and how to combine them (units converted to the contract's).
_Mapping = tuple[tuple[tuple[str, str], ...], Callable[..., pd.Series], str]
STANDARD_MAP: dict[str, _Mapping] = {
    "sleep_duration_h": ((_col("sleep", "summary_rapids_sumdurationasleepmain"),), lambda m: m / 60, "asleep minutes / 60"),
    "sleep_efficiency": ((_col("sleep", "summary_rapids_avgefficiencymain"),), lambda e: e / 100, "Fitbit efficiency % / 100"),
    "sleep_midpoint_h": (
        (_col("sleep", "summary_rapids_firstbedtimemain"), _col("sleep", "summary_rapids_lastwaketimemain")),
        _sleep_midpoint,
        "midpoint of first bedtime and last wake time, clock hours",
    ),
    "steps": ((_col("steps", "intraday_rapids_sumsteps"),), lambda s: s, "intraday step sum"),
    "active_minutes": ((_col("steps", "intraday_rapids_sumdurationactivebout"),), lambda s: s, "active-bout minutes"),
    "sedentary_minutes": ((_col("steps", "intraday_rapids_sumdurationsedentarybout"),), lambda s: s, "sedentary-bout minutes"),
    "screen_time_min": ((_col("screen", "rapids_sumdurationunlock"),), lambda s: s, "unlocked minutes"),
    "screen_unlocks": ((_col("screen", "rapids_countepisodeunlock"),), lambda s: s, "unlock episodes"),
    "night_screen_min": (
        (_col("screen", "rapids_sumdurationunlock", "night"),),
        lambda s: s,
        "unlocked minutes, night segment 00-06",
    ),
    "calls_count": (
        (_col("call", "rapids_incoming_count"), _col("call", "rapids_outgoing_count")),
        _sum_counts,
        "incoming + outgoing calls",
    ),
    "call_duration_min": (
        (_col("call", "rapids_incoming_sumduration"), _col("call", "rapids_outgoing_sumduration")),
        lambda a, b: _sum_counts(a, b) / 60,
        "incoming + outgoing call seconds / 60",
    ),
    "time_at_home_frac": ((_col("location", "doryab_timeathome"),), lambda m: m / 1440, "minutes at home / 1440"),
    "distance_km": ((_col("location", "doryab_totaldistance"),), lambda m: m / 1000, "metres travelled / 1000"),
    "location_entropy": ((_col("location", "doryab_locationentropy"),), lambda e: e, "Doryab location entropy"),
    "places_visited": ((_col("location", "doryab_numberofsignificantplaces"),), lambda n: n, "significant places"),
}
# Further RAPIDS features kept as custom features (no contract range; the model learns their scale).
CUSTOM_MAP: dict[str, _Mapping] = {
    "calls_missed": ((_col("call", "rapids_missed_count"),), lambda s: s, "missed calls"),
    "screen_first_use_after_midnight_min": (
        (_col("screen", "rapids_firstuseafter00unlock"),),
        lambda s: s,
        "minutes after 00:00 of first unlock",
    ),
    "sleep_in_bed_h": ((_col("sleep", "summary_rapids_sumdurationinbedmain"),), lambda m: m / 60, "in-bed minutes / 60"),
    "active_bout_max_min": (
        (_col("steps", "intraday_rapids_maxdurationactivebout"),),
        lambda s: s,
        "longest active bout, minutes",
    ),
    "time_top_place_frac": (
        (_col("location", "doryab_timeattop1location"),),
        lambda m: m / 1440,
        "minutes at most-visited place / 1440",
    ),
    "bluetooth_devices": ((_col("bluetooth", "rapids_uniquedevices"),), lambda s: s, "unique Bluetooth devices seen"),
}


@dataclass(frozen=True)
class GlobemImportConfig:
    """Where the GLOBEM data is (a folder of INS-W* datasets, or one dataset) and where to write the contract tables."""

    path: Path
    out_dir: Path


@dataclass
class GlobemImportResult:
    """What was written, and how many implausible values were dropped per feature."""

    features_path: Path
    outcomes_path: Path
    participants_path: Path
    datasets: list[str]
    n_participants: int
    n_rows: int
    n_labels: int
    dropped_out_of_range: dict[str, int] = field(default_factory=dict)


def dataset_dirs(path: Path) -> list[Path]:
    """The dataset folders (each with FeatureData/) under a path, or the path itself."""
    if (path / "FeatureData").is_dir():
        return [path]
    found = sorted(p.parent for p in path.glob("*/FeatureData") if p.is_dir())
    if not found:
        raise FileNotFoundError(f"{path}: no GLOBEM dataset here (expected FeatureData/ in it or in its subfolders)")
    return found


def _read_dataset(root: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    needed: dict[str, set[str]] = {}
    for inputs, _, _ in (*STANDARD_MAP.values(), *CUSTOM_MAP.values()):
        for modality, column in inputs:
            needed.setdefault(modality, set()).add(column)
    merged: pd.DataFrame | None = None
    for modality, columns in needed.items():
        file = root / "FeatureData" / f"{modality}.csv"
        wanted = columns | {"pid", "date"}
        part = pd.read_csv(file, usecols=wanted.__contains__, dtype={"pid": str, "date": str})
        missing = columns - set(part.columns)
        if missing:
            raise ValueError(f"{file}: expected RAPIDS column(s) {sorted(missing)}")
        merged = part if merged is None else merged.merge(part, on=["pid", "date"], how="outer")
    assert merged is not None
    labels = pd.read_csv(root / "SurveyData" / "dep_weekly.csv", dtype={"pid": str, "date": str})
    platform_file = root / "ParticipantsInfoData" / "platform.csv"
    platform = pd.read_csv(platform_file, dtype=str) if platform_file.exists() else pd.DataFrame(columns=["pid", "platform"])
    return merged, labels, platform


def import_globem(cfg: GlobemImportConfig) -> GlobemImportResult:
    """Convert GLOBEM features, weekly depression labels and platforms into validated contract tables."""
    dirs = dataset_dirs(Path(cfg.path))
    frames, label_frames, platforms = [], [], []
    dropped: dict[str, int] = {}
    for root in progress.track(dirs, "import GLOBEM datasets"):
        raw, labels, platform = _read_dataset(root)
        out = pd.DataFrame({PARTICIPANT: raw["pid"], DATE: raw["date"]})
        for name, (inputs, combine, _) in (*STANDARD_MAP.items(), *CUSTOM_MAP.items()):
            col = combine(*(raw[c].astype(float) for _, c in inputs))
            if name in SIGNALS:
                sig = SIGNALS[name]
                bad = col.notna() & ((col < sig.low) | (col > sig.high))
                # GPS jumps and sensor glitches: implausible values become missing, and are counted.
                dropped[name] = dropped.get(name, 0) + int(bad.sum())
                col = col.mask(bad)
            out[name] = col.astype(np.float32)
        frames.append(out)
        label_frames.append(
            pd.DataFrame({PARTICIPANT: labels["pid"], DATE: labels["date"], LABEL: labels["dep"].astype(str).str.lower()})
        )
        platforms.append(platform.rename(columns={"pid": PARTICIPANT})[[PARTICIPANT, "platform"]])
    features = validate_features(pd.concat(frames, ignore_index=True), source=f"{cfg.path} (converted features)")
    outcomes = validate_outcomes(
        pd.concat(label_frames, ignore_index=True).dropna(subset=[LABEL]),
        set(features[PARTICIPANT]),
        source=f"{cfg.path} (dep_weekly labels)",
    )
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = GlobemImportResult(
        features_path=out_dir / "features.parquet",
        outcomes_path=out_dir / "outcomes.csv",
        participants_path=out_dir / "participants.csv",
        datasets=[d.name for d in dirs],
        n_participants=int(features[PARTICIPANT].nunique()),
        n_rows=len(features),
        n_labels=len(outcomes),
        dropped_out_of_range={k: v for k, v in dropped.items() if v},
    )
    features.to_parquet(result.features_path, index=False)
    outcomes.assign(**{DATE: outcomes[DATE].dt.strftime("%Y-%m-%d")}).to_csv(result.outcomes_path, index=False)
    pd.concat(platforms, ignore_index=True).to_csv(result.participants_path, index=False)
    return result


def mapping_markdown() -> str:
    """The RAPIDS-to-contract mapping as a Markdown table for the docs."""
    rows = ["| earlywarn feature | kind | RAPIDS source | conversion |", "|---|---|---|---|"]
    for kind, table in (("standard", STANDARD_MAP), ("custom", CUSTOM_MAP)):
        for name, (inputs, _, how) in table.items():
            rows.append(f"| `{name}` | {kind} | {', '.join(f'`{c}`' for _, c in inputs)} | {how} |")
    return "\n".join(rows)
