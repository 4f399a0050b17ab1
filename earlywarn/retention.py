"""`purge(cfg) -> PurgeResult`: retention across every copy — the store, retrain snapshots, monitoring reports and
the MLflow reference samples made from logged traffic."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from earlywarn.data import state, store
from earlywarn.data.erasure import expire_file, expire_files
from earlywarn.training import tracking

REFERENCE = "reference.parquet"


@dataclass(frozen=True)
class PurgeConfig:
    db_url: str
    before: dt.datetime  # records stored, and traffic days dated, before this go


@dataclass
class PurgeResult:
    deleted: dict[str, int]
    files: list[Path] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)


def purge(cfg: PurgeConfig) -> PurgeResult:
    """Store rows stored before the cut-off; logged participants' days dated before it in retrain snapshots and in
    every run's reference sample (any artifact store); monitoring reports written before it. A training cohort's own
    rows stay: they are not traffic."""
    deleted = store.purge(store.engine_for(cfg.db_url), cfg.before)
    files = expire_files(state.home(), cfg.before)
    tracking.configure()
    runs = tracking.rewrite_artifact(REFERENCE, lambda path: expire_file(path, cfg.before.date()))
    return PurgeResult(deleted, files, runs)
