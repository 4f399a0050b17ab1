"""Chunked import of large daily tables: each chunk is validated and scattered onto the day grid, never the whole table."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from earlywarn.data.contract import DATE, EVENT, KEY_COLUMNS, PARTICIPANT, feature_columns
from earlywarn.data.panel import Panel, day_number
from earlywarn.data.validation import (
    MAX_PROBLEMS_SHOWN,
    ContractError,
    OutcomeMode,
    Problem,
    check_features,
    keyed,
    outcome_mode,
    read_table,
    validate_outcomes,
)

DEFAULT_CHUNK_ROWS = 200_000


@dataclass(frozen=True)
class GridData:
    """A validated features file on the day grid, its validated outcomes, and what the model card reports of it."""

    panel: Panel
    outcomes: pd.DataFrame | None
    mode: OutcomeMode | None
    participant_days: int
    missing_share: float  # share of missing values over the rows the file holds (not the gaps between them)
    first_date: dt.date
    last_date: dt.date

    @property
    def feature_names(self) -> list[str]:
        return self.panel.features


def open_parquet(path: str | Path) -> pq.ParquetFile:
    """A Parquet file for reading in batches. Pre-buffering is off: Arrow keeps pre-buffered column chunks until the
    reader is closed (apache/arrow#39808), which made memory grow with the file (3.1 GB instead of 0.4 at 18 M rows)."""
    return pq.ParquetFile(path, pre_buffer=False)


def table_columns(path: str | Path) -> list[str]:
    """Column names of a CSV or Parquet file, read from its header or schema only."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.suffix.lower() in (".parquet", ".pq"):
        return list(open_parquet(path).schema_arrow.names)
    return list(pd.read_csv(path, nrows=0).columns)


def iter_chunks(path: str | Path, chunk_rows: int, columns: list[str] | None = None) -> Iterator[pd.DataFrame]:
    """The table in chunks of at most `chunk_rows` rows, ids as strings (as `read_table` gives them)."""
    path = Path(path)
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be at least 1")
    if path.suffix.lower() in (".parquet", ".pq"):
        for batch in open_parquet(path).iter_batches(batch_size=chunk_rows, columns=columns):
            frame = batch.to_pandas()
            if PARTICIPANT in frame.columns:
                frame[PARTICIPANT] = frame[PARTICIPANT].astype("string").astype(object)
            yield frame
        return
    if path.suffix.lower() not in (".csv", ".txt") and path.suffix != "":
        raise ValueError(f"{path}: unsupported table format '{path.suffix}' (use .csv or .parquet)")
    dtypes = {PARTICIPANT: str, DATE: str, EVENT: str}
    yield from pd.read_csv(path, dtype=dtypes, usecols=columns, chunksize=chunk_rows, keep_default_na=True)


class _Problems:
    """Contract problems gathered over every chunk, so one error lists them all with whole-file row numbers."""

    def __init__(self) -> None:
        self.shown: list[Problem] = []
        self.total = 0

    def add(self, err: ContractError) -> None:
        self.shown.extend(err.problems)
        self.total += err.total

    def raise_if_any(self) -> None:
        if self.total:
            raise ContractError(self.shown, self.total)


def _keys(path: Path, chunk_rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """First pass, ids and dates only: every participant (sorted) with their first and last day."""
    index: dict[str, int] = {}
    first = np.empty(0, np.int64)
    last = np.empty(0, np.int64)
    for chunk in iter_chunks(path, chunk_rows, list(KEY_COLUMNS)):
        ids = chunk[PARTICIPANT].astype("string").str.strip()
        days = pd.to_datetime(chunk[DATE], format="%Y-%m-%d", errors="coerce")
        ok = (ids.notna() & (ids != "") & days.notna()).to_numpy()
        local, uniq = pd.factorize(ids[ok])
        codes = np.array([index.setdefault(u, len(index)) for u in uniq], np.int64)[local]
        if len(index) > len(first):
            grow = len(index) - len(first)
            first = np.concatenate([first, np.full(grow, np.iinfo(np.int64).max)])
            last = np.concatenate([last, np.full(grow, np.iinfo(np.int64).min)])
        d = day_number(days[ok])
        np.minimum.at(first, codes, d)
        np.maximum.at(last, codes, d)
    ids_sorted = np.array(sorted(index), dtype=object)
    order = np.array([index[p] for p in ids_sorted], np.int64)
    return ids_sorted, first[order], last[order]


def load_grid(
    features_path: str | Path,
    outcomes_path: str | Path | None = None,
    pad: int = 27,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> GridData:
    """Validate a features file chunk by chunk straight onto a dense day grid (and its outcomes against it).

    Memory: one chunk of the table, plus the grid itself (4 bytes per participant-day and signal, padding included)
    and one byte per grid row to catch duplicate participant-days across chunks. Problems from every chunk are
    reported together, with row numbers counted over the whole file."""
    path = Path(features_path)
    names = feature_columns([c for c in table_columns(path) if c not in KEY_COLUMNS])
    participants, first, last = _keys(path, chunk_rows)
    offsets = np.concatenate([[0], np.cumsum(last - first + 1 + pad)]).astype(np.int64)
    values = np.full((int(offsets[-1]), len(names)), np.nan, np.float32)
    panel = Panel(participants, offsets, first, values, names, pad)
    code_of = pd.Index(participants)
    seen = np.zeros(panel.n_rows, np.uint8)
    problems = _Problems()
    start, missing = 0, 0
    for chunk in iter_chunks(path, chunk_rows):
        typed, found = check_features(chunk, source=str(path), first_row=start, whole_table=False)
        if found is not None:
            problems.add(found)
        # Duplicates are looked for among the rows whose id and day parse, whatever else is wrong: one pass, every problem.
        ok = keyed(typed)
        at_ok = np.flatnonzero(ok)
        typed = typed[ok]
        p = code_of.get_indexer(typed[PARTICIPANT])
        rows = panel.rows_for(p, day_number(typed[DATE]))
        again = seen[rows].astype(bool)
        order = np.argsort(rows, kind="stable")
        again[order[1:]] |= rows[order][1:] == rows[order][:-1]
        if again.any():
            at = np.flatnonzero(again)
            who = typed.iloc[at[:MAX_PROBLEMS_SHOWN]]
            shown = [
                Problem(
                    str(path), start + int(r) + 1, None, f"duplicate participant-day ({q} on {d:%Y-%m-%d} appears more than once)"
                )
                for r, q, d in zip(at_ok[at], who[PARTICIPANT], who[DATE], strict=False)
            ]
            problems.add(ContractError(shown, len(at)))
        seen[rows] = 1
        block = typed[names].to_numpy(np.float32)
        values[rows] = block
        missing += int(np.isnan(block).sum())
        start += len(chunk)
    stored = int(seen.sum())
    share = missing / max(start * len(names), 1)
    first_date = dt.date(1970, 1, 1) + dt.timedelta(days=int(first.min())) if len(first) else dt.date.min
    last_date = dt.date(1970, 1, 1) + dt.timedelta(days=int(last.max())) if len(last) else dt.date.min
    outcomes, mode = None, None
    if outcomes_path is not None:
        raw = read_table(outcomes_path)
        try:  # judged even when the features failed, so one run lists every problem in both tables
            mode = outcome_mode(raw)
            outcomes = validate_outcomes(raw, set(participants), source=str(outcomes_path))
        except ContractError as err:
            problems.add(err)
    problems.raise_if_any()
    return GridData(panel, outcomes, mode, stored, share, first_date, last_date)


CARE_FILE = "care.csv"  # beside the features: participant_id, date of each escalation a care team acted on


def load_care(features_path: Path) -> pd.DataFrame | None:
    """Days a care team acted on an escalation (written by retraining from alert feedback), where the file exists;
    windows those days may have changed are censored (`build_windows(care=...)`)."""
    path = Path(features_path).parent / CARE_FILE
    if not path.exists():
        return None
    care = pd.read_csv(path, dtype={"participant_id": str})
    care["date"] = pd.to_datetime(care["date"])
    return care
