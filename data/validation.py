"""Validation of daily behaviour and outcome tables against the contract, with errors that name file, row and column."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from earlywarn.data.contract import DATE, EVENT, KEY_COLUMNS, LABEL, PARTICIPANT, SIGNALS, feature_columns

MAX_PROBLEMS_SHOWN = 20
OutcomeMode = Literal["event", "label"]


@dataclass(frozen=True)
class Problem:
    """One contract violation. `row` counts data rows from 1 (the header is not a row); None means the whole column/table."""

    source: str
    row: int | None
    column: str | None
    message: str

    def __str__(self) -> str:
        where = [self.source]
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column '{self.column}'")
        return f"{', '.join(where)}: {self.message}"


class ContractError(ValueError):
    """A table broke the data contract; `problems` lists every violation found."""

    def __init__(self, problems: list[Problem], total: int | None = None):
        self.problems = problems
        self.total = total if total is not None else len(problems)
        # Examples of every kind of violation, so a long run of one kind does not hide the others.
        kinds: dict[tuple[str, str | None, str], list[Problem]] = {}
        for p in problems:
            kinds.setdefault((p.source, p.column, p.message.split(" (", 1)[0]), []).append(p)
        per_kind = max(3, MAX_PROBLEMS_SHOWN // max(len(kinds), 1))
        shown_problems = [p for group in kinds.values() for p in group[:per_kind]]
        shown = "\n".join(f"  - {p}" for p in shown_problems)
        more = f"\n  … and {self.total - len(shown_problems)} more" if self.total > len(shown_problems) else ""
        super().__init__(f"{self.total} contract violation(s):\n{shown}{more}")


@dataclass
class _Collector:
    source: str
    first_row: int = 0  # rows before this chunk, so a chunked read still names rows of the whole file
    problems: list[Problem] = field(default_factory=list)
    total: int = 0

    def add(
        self, message: str, column: str | None = None, rows: np.ndarray | None = None, detail: list[str] | None = None
    ) -> None:
        """Record a violation on some rows (positional indices) of a column, or on the whole table."""
        if rows is None:
            self.problems.append(Problem(self.source, None, column, message))
            self.total += 1
            return
        self.total += len(rows)
        for k, r in enumerate(rows[:MAX_PROBLEMS_SHOWN]):
            extra = f" ({detail[k]})" if detail is not None else ""
            self.problems.append(Problem(self.source, self.first_row + int(r) + 1, column, message + extra))

    def raise_if_any(self) -> None:
        if self.problems:
            raise ContractError(self.problems, self.total)


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV or Parquet table; ids stay strings so '007' is not turned into 7."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.suffix.lower() in (".parquet", ".pq"):
        df = pd.read_parquet(path)
        if PARTICIPANT in df.columns:
            df[PARTICIPANT] = df[PARTICIPANT].astype("string").astype(object)
        return df
    if path.suffix.lower() in (".csv", ".txt") or path.suffix == "":
        return pd.read_csv(path, dtype={PARTICIPANT: str, DATE: str, EVENT: str}, keep_default_na=True)
    raise ValueError(f"{path}: unsupported table format '{path.suffix}' (use .csv or .parquet)")


def _parse_dates(df: pd.DataFrame, errs: _Collector) -> pd.Series:
    raw = df[DATE]
    if pd.api.types.is_datetime64_any_dtype(raw):
        parsed = pd.to_datetime(raw)
        if parsed.isna().any():
            errs.add("missing date", DATE, np.flatnonzero(parsed.isna().to_numpy()))
        bad_time = (parsed.notna() & (parsed != parsed.dt.normalize())).to_numpy()
        if bad_time.any():
            errs.add("date has a time of day; the contract wants whole days", DATE, np.flatnonzero(bad_time))
    else:
        as_str = raw.astype("string").str.strip()
        parsed = pd.to_datetime(as_str, format="%Y-%m-%d", errors="coerce")
        bad = parsed.isna().to_numpy()
        if bad.any():
            rows = np.flatnonzero(bad)
            values = as_str.iloc[rows[:MAX_PROBLEMS_SHOWN]].fillna("<empty>").tolist()
            errs.add("unparsable date, expected YYYY-MM-DD", DATE, rows, [f"got {v!r}" for v in values])
    return parsed.astype("datetime64[ns]")


def _check_ids(df: pd.DataFrame, errs: _Collector) -> pd.Series:
    ids = df[PARTICIPANT].astype("string").str.strip()
    bad = (ids.isna() | (ids == "")).to_numpy()
    if bad.any():
        errs.add("missing participant id", PARTICIPANT, np.flatnonzero(bad))
    return ids.astype(object)


def _require_columns(df: pd.DataFrame, required: tuple[str, ...], errs: _Collector) -> None:
    missing = [c for c in required if c not in df.columns]
    if missing:
        errs.add(f"required column(s) missing: {', '.join(missing)}; found {list(df.columns)[:10]}")
        errs.raise_if_any()


def validate_features(df: pd.DataFrame, source: str = "features", first_row: int = 0, whole_table: bool = True) -> pd.DataFrame:
    """Check a daily behaviour table and return it typed: string ids, datetime64 days, float32 features, sorted.

    For one chunk of a larger file (`whole_table=False`) rows are numbered from `first_row`, the duplicate check is
    left to the caller (it needs every chunk) and the rows keep their order."""
    typed, problems = check_features(df, source, first_row, whole_table)
    if problems is not None:
        raise problems
    if not whole_table:
        return typed
    return typed.sort_values([PARTICIPANT, DATE], kind="stable").reset_index(drop=True)


def keyed(typed: pd.DataFrame) -> np.ndarray:
    """Rows with a usable participant id and day: the ones a duplicate check can judge."""
    return (typed[PARTICIPANT].notna() & (typed[PARTICIPANT] != "") & typed[DATE].notna()).to_numpy()


def check_features(
    df: pd.DataFrame, source: str = "features", first_row: int = 0, whole_table: bool = True
) -> tuple[pd.DataFrame, ContractError | None]:
    """Every violation in a features table in one pass (duplicates among the rows whose id and day parse), and the
    typed rows in file order (unparsable values as missing)."""
    errs = _Collector(source, first_row)
    _require_columns(df, KEY_COLUMNS, errs)
    df = df.reset_index(drop=True)
    features = feature_columns(list(df.columns))
    if not features:
        errs.add("no feature columns: the table needs at least one numeric column besides participant_id and date")
    out = pd.DataFrame({PARTICIPANT: _check_ids(df, errs), DATE: _parse_dates(df, errs)})
    values: dict[str, np.ndarray] = {}
    for col in features:
        raw = df[col]
        if pd.api.types.is_bool_dtype(raw):
            errs.add("boolean values are not numeric features", col)
            continue
        num = pd.to_numeric(raw, errors="coerce") if not pd.api.types.is_numeric_dtype(raw) else raw
        arr = num.to_numpy(dtype="float64", na_value=np.nan)
        non_numeric = np.isnan(arr) & raw.notna().to_numpy()
        if not pd.api.types.is_numeric_dtype(raw):
            # Blank strings mean missing in CSVs; anything else that fails to parse is an error.
            blank = raw.astype("string").str.strip().fillna("").eq("").to_numpy()
            non_numeric &= ~blank
        if non_numeric.any():
            rows = np.flatnonzero(non_numeric)
            got = [f"got {v!r}" for v in raw.iloc[rows[:MAX_PROBLEMS_SHOWN]].tolist()]
            errs.add("non-numeric value", col, rows, got)
        infinite = np.isinf(arr)
        if infinite.any():
            errs.add("infinite value", col, np.flatnonzero(infinite))
        if col in SIGNALS:
            sig = SIGNALS[col]
            with np.errstate(invalid="ignore"):
                outside = np.isfinite(arr) & ((arr < sig.low) | (arr > sig.high))
            if outside.any():
                rows = np.flatnonzero(outside)
                got = [f"got {arr[r]:g}" for r in rows[:MAX_PROBLEMS_SHOWN]]
                errs.add(f"outside the valid range {sig.low:g}–{sig.high:g} {sig.unit}", col, rows, got)
        values[col] = arr.astype(np.float32)
    if whole_table:
        ok = keyed(out)
        dup = np.zeros(len(out), bool)
        dup[ok] = out[ok].duplicated(subset=[PARTICIPANT, DATE], keep="first").to_numpy()
        if dup.any():
            rows = np.flatnonzero(dup)
            who = out.iloc[rows[:MAX_PROBLEMS_SHOWN]]
            detail = [f"{p} on {d:%Y-%m-%d} appears more than once" for p, d in zip(who[PARTICIPANT], who[DATE], strict=True)]
            errs.add("duplicate participant-day", None, rows, detail)
    found = ContractError(errs.problems, errs.total) if errs.problems else None
    return pd.concat([out, pd.DataFrame(values, index=out.index)], axis=1), found


def outcome_mode(df: pd.DataFrame) -> OutcomeMode:
    """Which of the two outcome shapes a table has: dated events or dated 0/1 labels."""
    has_event, has_label = EVENT in df.columns, LABEL in df.columns
    if has_event == has_label:
        raise ContractError(
            [
                Problem(
                    "outcomes", None, None, f"needs exactly one of the columns '{EVENT}' or '{LABEL}'; found {list(df.columns)}"
                )
            ]
        )
    return "event" if has_event else "label"


def validate_outcomes(df: pd.DataFrame, known_participants: set[str] | None = None, source: str = "outcomes") -> pd.DataFrame:
    """Check an outcomes table (events or labels) and return it typed and sorted."""
    errs = _Collector(source)
    mode = outcome_mode(df)
    _require_columns(df, (*KEY_COLUMNS, mode), errs)
    df = df.reset_index(drop=True)
    ids = _check_ids(df, errs)
    out = pd.DataFrame({PARTICIPANT: ids, DATE: _parse_dates(df, errs)})
    if mode == "event":
        kind = df[EVENT].astype("string").str.strip()
        empty = (kind.isna() | (kind == "")).to_numpy()
        if empty.any():
            errs.add("missing event type (e.g. 'relapse')", EVENT, np.flatnonzero(empty))
        out[EVENT] = kind.astype(object)
    else:
        raw = df[LABEL]
        mapped = raw.astype("string").str.strip().str.lower().map({"1": 1, "0": 0, "1.0": 1, "0.0": 0, "true": 1, "false": 0})
        bad = mapped.isna().to_numpy()
        if bad.any():
            rows = np.flatnonzero(bad)
            got = [f"got {v!r}" for v in raw.iloc[rows[:MAX_PROBLEMS_SHOWN]].tolist()]
            errs.add("label must be 0/1 or true/false", LABEL, rows, got)
        out[LABEL] = mapped.fillna(-1).astype(np.int8)
    if known_participants is not None:
        unknown = (~out[PARTICIPANT].isin(known_participants) & out[PARTICIPANT].notna()).to_numpy()
        if unknown.any():
            rows = np.flatnonzero(unknown)
            detail = [f"{p!r} has no rows in the features table" for p in out[PARTICIPANT].iloc[rows[:MAX_PROBLEMS_SHOWN]]]
            errs.add("outcome for an unknown participant", PARTICIPANT, rows, detail)
    # Two events of the same kind on one day, or two labels for one day, cannot both be right.
    key = [PARTICIPANT, DATE] if mode == "label" else [PARTICIPANT, DATE, mode]
    ok = keyed(out)
    dup = np.zeros(len(out), bool)
    dup[ok] = out[ok].duplicated(subset=key, keep="first").to_numpy()
    if dup.any():
        errs.add("duplicate outcome for the same participant and day", None, np.flatnonzero(dup))
    errs.raise_if_any()
    return out.sort_values([PARTICIPANT, DATE], kind="stable").reset_index(drop=True)


@dataclass(frozen=True)
class ValidatedData:
    """A typed features table and, optionally, its outcomes."""

    features: pd.DataFrame
    outcomes: pd.DataFrame | None
    mode: OutcomeMode | None

    @property
    def feature_names(self) -> list[str]:
        return feature_columns(list(self.features.columns))


def load_validated(features_path: str | Path, outcomes_path: str | Path | None = None) -> ValidatedData:
    """Read and validate a features file and, if given, an outcomes file (checked against the features' participants)."""
    typed, problems = check_features(read_table(features_path), source=str(features_path))
    outcomes, mode = None, None
    if outcomes_path is not None:
        raw = read_table(outcomes_path)
        try:  # the outcomes are judged even when the features failed, so one run lists every problem in both
            mode = outcome_mode(raw)
            outcomes = validate_outcomes(raw, set(typed.loc[keyed(typed), PARTICIPANT]), source=str(outcomes_path))
        except ContractError as err:
            raise (
                err if problems is None else ContractError(problems.problems + err.problems, problems.total + err.total)
            ) from None
    if problems is not None:
        raise problems
    return ValidatedData(typed.sort_values([PARTICIPANT, DATE], kind="stable").reset_index(drop=True), outcomes, mode)
