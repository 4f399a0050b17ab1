"""`rekey(cfg) -> RekeyResult`: rotate the pseudonymisation secret without losing anyone's history — the store,
retrain snapshots and reference samples move from the old secret's pseudonyms to the new one's."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from earlywarn.data import state, store
from earlywarn.data.contract import PARTICIPANT
from earlywarn.data.erasure import rename_file, rename_tables
from earlywarn.data.pseudonym import Pseudonymizer
from earlywarn.data.store.rekey import rekey as rekey_store
from earlywarn.data.store.rekey import unmatched
from earlywarn.training import tracking

REFERENCE = "reference.parquet"


@dataclass(frozen=True)
class RekeyConfig:
    db_url: str
    ids: Path  # CSV with `partner` and `participant_id`: every participant of every partner (pseudonyms are one-way)
    drop_unmatched: bool = False  # delete the records of people the list does not name, instead of refusing


@dataclass
class RekeyResult:
    people: int
    rows: dict[str, int]
    dropped: int
    files: list[Path] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)


def _listed(path: Path) -> pd.DataFrame:
    listed = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in ("partner", PARTICIPANT) if c not in listed.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing} (one row per participant: partner,participant_id)")
    blank = listed.index[(listed["partner"].str.strip() == "") | (listed[PARTICIPANT].str.strip() == "")]
    if len(blank):
        raise ValueError(f"{path}: row {int(blank[0]) + 2} has an empty partner or participant_id")
    return listed


def rekey(cfg: RekeyConfig) -> RekeyResult:
    """Needs EARLYWARN_HMAC_KEY_PREVIOUS (the store's secret now) and EARLYWARN_HMAC_KEY (the new one). Files and
    reference samples are renamed first; the store's single transaction, which records the new secret, comes last,
    so an interrupted rotation is run again under the old secret."""
    old, new = Pseudonymizer.previous_from_env(), Pseudonymizer.from_env()
    engine = store.engine_for(cfg.db_url)
    store.check_key(engine, old)  # the store must be under the old secret
    listed = _listed(cfg.ids)
    pairs = {old(p, i): new(p, i) for p, i in zip(listed["partner"], listed[PARTICIPANT], strict=True)}
    partner_of = {old(p, i): p for p, i in zip(listed["partner"], listed[PARTICIPANT], strict=True)}
    # Retraining names a logged participant `partner:key`; reference samples tag rows with the keyed tag of that.
    logged = {f"{partner_of[o]}:{o}": f"{partner_of[o]}:{n}" for o, n in pairs.items()}
    tags = {old.row_tag(a): new.row_tag(b) for a, b in logged.items()}
    with engine.connect() as conn:
        unmatched(conn, pairs, cfg.drop_unmatched)  # refuse before any file changes
    tracking.configure()
    runs = tracking.rewrite_artifact(REFERENCE, lambda path: rename_file(path, logged, tags))
    files = rename_tables(state.home(), logged, tags)
    rows, dropped = rekey_store(engine, pairs, new.fingerprint, cfg.drop_unmatched)
    return RekeyResult(len(pairs), rows, dropped, files, runs)
