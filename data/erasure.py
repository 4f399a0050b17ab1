"""Remove one participant's rows from the tables kept as files (retrain snapshots, reference samples), and what the
retention period has passed from the files made from logged traffic."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from earlywarn.data.contract import DATE, PARTICIPANT

TAG = "participant_tag"  # reference samples name their rows' participants by a keyed tag, not an id


def _columns(path: Path) -> list[str]:
    if path.suffix == ".parquet":
        return list(pq.read_schema(path).names)
    with path.open(encoding="utf-8", errors="replace") as f:
        return f.readline().strip().split(",")


def _tables(root: Path) -> Iterator[Path]:
    for path in root.rglob("*"):
        if path.suffix in (".parquet", ".csv") and path.is_file() and not path.is_symlink():
            yield path


def _holds(path: Path, columns: list[str], wanted: set[str]) -> bool:
    table = pq.read_table(path, columns=columns)
    return any(table[c].to_pandas().astype(str).isin(wanted).any() for c in columns)


def without(frame: pd.DataFrame, ids: set[str], tags: set[str]) -> pd.DataFrame | None:
    """The frame without the rows of these ids or tags; None when it holds none of them."""
    drop = pd.Series(False, index=frame.index)
    if PARTICIPANT in frame.columns:
        drop |= frame[PARTICIPANT].astype(str).isin(ids)
    if TAG in frame.columns:
        drop |= frame[TAG].astype(str).isin(tags)
    return frame[~drop] if drop.any() else None


def _replace(path: Path, frame: pd.DataFrame) -> None:
    """Write the table beside the old file, then rename it over: a crash leaves the old file or the new, never half."""
    tmp = path.with_name(path.name + ".rewriting")
    frame.to_parquet(tmp, index=False) if path.suffix == ".parquet" else frame.to_csv(tmp, index=False)
    os.replace(tmp, path)


def erase_file(path: Path, ids: set[str], tags: set[str]) -> bool:
    """Rewrite one Parquet or CSV table without the rows of these ids or tags (written beside, then renamed over the
    old file); False when it holds none of them."""
    columns = _columns(path)
    if PARTICIPANT not in columns and TAG not in columns:
        return False
    parquet = path.suffix == ".parquet"
    if parquet and not _holds(path, [c for c in (PARTICIPANT, TAG) if c in columns], ids | tags):
        return False  # a large cohort table is read in full only when it holds the person
    frame = pd.read_parquet(path) if parquet else pd.read_csv(path, dtype={PARTICIPANT: str, TAG: str})
    kept = without(frame, ids, tags)
    if kept is None:
        return False
    _replace(path, kept)
    return True


def erase_tables(root: Path, ids: set[str], tags: set[str]) -> list[Path]:
    """`erase_file` on every Parquet or CSV table under root; returns the files changed."""
    return [path for path in _tables(root) if erase_file(path, ids, tags)]


def rename_file(path: Path, ids: dict[str, str], tags: dict[str, str]) -> bool:
    """Rewrite one table with its participants renamed (a rotated pseudonymisation secret); False when none appear."""
    columns = _columns(path)
    if PARTICIPANT not in columns and TAG not in columns:
        return False
    parquet = path.suffix == ".parquet"
    frame = pd.read_parquet(path) if parquet else pd.read_csv(path, dtype={PARTICIPANT: str, TAG: str})
    hit = False
    for column, names in ((PARTICIPANT, ids), (TAG, tags)):
        if column in frame.columns and frame[column].astype(str).isin(names.keys()).any():
            frame[column] = frame[column].astype(str).map(lambda v, n=names: n.get(v, v))
            hit = True
    if hit:
        _replace(path, frame)
    return hit


def rename_tables(root: Path, ids: dict[str, str], tags: dict[str, str]) -> list[Path]:
    """`rename_file` on every Parquet or CSV table under root; returns the files changed."""
    return [path for path in _tables(root) if rename_file(path, ids, tags)]


LOGGED_MARK = ":"  # retrain snapshots name logged participants `partner:key`; a training cohort's own ids have none
LOGGED = "logged"  # reference samples mark logged participants' rows (they name people by tag only)
TRAFFIC_TABLES = ("retrain",)  # state folders whose tables hold logged traffic
TRAFFIC_FILES = (("monitoring", "reports"),)  # state folders whose files are made from logged traffic


def expire_files(root: Path, before: dt.datetime) -> list[Path]:
    """Retention beyond the store: logged participants' rows dated before `before` leave every retrain snapshot, and
    monitoring reports written before it are deleted. The training cohort's own rows stay (they are not traffic)."""
    changed = [p for folder in TRAFFIC_TABLES for p in _tables(root / folder) if expire_file(p, before.date())]
    for parts in TRAFFIC_FILES:
        folder = root.joinpath(*parts)
        old = [p for p in folder.rglob("*") if p.is_file() and p.stat().st_mtime < before.timestamp()] if folder.is_dir() else []
        for path in old:
            path.unlink()
        changed += old
    return changed


def expire_file(path: Path, before: dt.date) -> bool:
    """Rewrite one table without logged participants' days dated before `before` (named `partner:key`, or marked
    `logged` in a reference sample); False when it has none."""
    columns = _columns(path)
    if DATE not in columns or (PARTICIPANT not in columns and LOGGED not in columns):
        return False
    parquet = path.suffix == ".parquet"
    frame = pd.read_parquet(path) if parquet else pd.read_csv(path, dtype={PARTICIPANT: str})
    logged = (
        frame[LOGGED].astype(bool) if LOGGED in frame else frame[PARTICIPANT].astype(str).str.contains(LOGGED_MARK, regex=False)
    )
    old = logged & (pd.to_datetime(frame[DATE]).dt.date < before)
    if not old.any():
        return False
    _replace(path, frame[~old])
    return True
