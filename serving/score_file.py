"""`score_file(cfg) -> BatchScoreResult`: nightly scoring of a whole cohort from a file, without HTTP, in bounded memory."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch

from earlywarn.data import progress
from earlywarn.data.contract import DATE, PARTICIPANT
from earlywarn.data.ingest import open_parquet
from earlywarn.data.settings import MODEL_NAME
from earlywarn.training import supply_chain
from earlywarn.training.bundle import ModelBundle
from earlywarn.training.scoring import histories_from_frame, score_histories

OUTPUT_SCHEMA = pa.schema(
    [
        (PARTICIPANT, pa.string()),
        ("window_end", pa.date32()),
        ("status", pa.string()),
        ("risk", pa.float32()),
        ("risk_low", pa.float32()),
        ("risk_high", pa.float32()),
        ("band", pa.string()),
        ("escalate", pa.bool_()),
        ("days_observed", pa.int16()),
        ("signals_used", pa.string()),  # the signals the score rests on (sent at some day of the history), comma-joined
    ]
)


@dataclass(frozen=True)
class BatchScoreConfig:
    """Which file to score with which packaged model, up to which day, in how many rows at a time."""

    features: Path  # parquet, rows of one participant contiguous (as `earlywarn data synth` and exports write them)
    out: Path  # parquet: participant_id, window_end, status, risk, risk_low, risk_high, band, escalate, days_observed,
    # signals_used
    model_tag: str = f"{MODEL_NAME}:latest"
    as_of: dt.date | None = None  # default: each participant's last day, scored for the file's newest day
    batch_rows: int = 500_000  # memory is bounded by this, not by the cohort
    partner: str | None = None  # whose people these are: withdrawn ones are left out and ids written as pseudonyms
    raw_ids: bool = False  # with a partner: write the partner's own ids (asked for explicitly) instead of pseudonyms


@dataclass
class BatchScoreResult:
    participants: int
    scored: int
    seconds: float
    out: Path
    withdrawn: int = 0  # left out: they withdrew consent


class _Consent:
    """The partner's withdrawals, checked per batch, and the pseudonyms its people's ids are written as."""

    def __init__(self, partner: str, raw_ids: bool):
        from earlywarn.data import store
        from earlywarn.data.pseudonym import Pseudonymizer

        self.partner, self.raw_ids, self.store = partner, raw_ids, store
        self.engine = store.engine_for(store.url_from_env())
        self.pseudonym = Pseudonymizer.from_env()
        store.check_key(self.engine, self.pseudonym)  # another key would match no one's withdrawal

    def apply(self, table: pa.Table) -> tuple[pa.Table, int]:
        ids = table.column(PARTICIPANT).to_pylist()
        keys = [self.pseudonym(self.partner, i) for i in ids]
        gone = {k for _, k in self.store.withdrawn(self.engine, [(self.partner, k) for k in keys])}
        keep = pa.array([k not in gone for k in keys])
        table = table.filter(keep)
        if not self.raw_ids:
            kept = [k for k in keys if k not in gone]
            table = table.set_column(0, pa.field(PARTICIPANT, pa.string()), pa.array(kept, pa.string()))
        return table, len(ids) - table.num_rows


def newest_day(source: pq.ParquetFile) -> dt.date | None:
    """The file's newest date, from the row groups' statistics (no data read), or a pass over the date column."""
    column = source.schema_arrow.get_field_index(DATE)
    stats = [source.metadata.row_group(i).column(column).statistics for i in range(source.metadata.num_row_groups)]
    newest: pd.Timestamp | None
    if stats and all(s is not None and s.has_min_max for s in stats):
        newest = max(pd.Timestamp(s.max) for s in stats)
    else:
        batches = (pd.to_datetime(b.column(0).to_pandas()).max() for b in source.iter_batches(columns=[DATE]))
        newest = max((b for b in batches if not pd.isna(b)), default=None)
    return None if newest is None else newest.date()


def score_frame(
    bundle: ModelBundle, frame: pd.DataFrame, as_of: dt.date | None = None, newest: dt.date | None = None
) -> pa.Table:
    """Score every participant whose rows are all in this frame: the unit of work for one process, or for one
    task of a distributed engine (see docs/scaling.md). Scores are for `as_of`, else for `newest` (the file's)."""
    # Only the days the model reads are gridded: memory is bounded by the batch, not by anyone's whole history.
    histories = histories_from_frame(frame, bundle.features, bundle.input_days, as_of, newest)
    with torch.inference_mode():
        s = score_histories(bundle, histories)
    return pa.table(
        {
            PARTICIPANT: pa.array(histories.participant_ids, pa.string()),
            "window_end": pa.array(histories.end_dates, pa.date32()),
            "status": pa.array(s.status, pa.string()),
            "risk": pa.array(s.risk, pa.float32(), from_pandas=True),
            "risk_low": pa.array(s.risk_low, pa.float32(), from_pandas=True),
            "risk_high": pa.array(s.risk_high, pa.float32(), from_pandas=True),
            "band": pa.array(s.band, pa.string()),
            "escalate": pa.array([s.escalate(i) for i in range(len(s.status))], pa.bool_()),
            "days_observed": pa.array(s.days_observed.astype(np.int16)),
            "signals_used": pa.array([",".join(f for f, p in zip(bundle.features, row, strict=True) if p) for row in s.present]),
        },
        schema=OUTPUT_SCHEMA,
    )


def score_file(cfg: BatchScoreConfig) -> BatchScoreResult:
    """Stream the file in row batches, score each participant once it is complete, and append to the output."""
    import bentoml

    started = time.perf_counter()
    bundle = supply_chain.load_promoted(Path(bentoml.models.get(cfg.model_tag).path))
    source = open_parquet(cfg.features)
    names = source.schema_arrow.names
    keys = [c for c in (PARTICIPANT, DATE) if c not in names]
    if keys:
        raise ValueError(f"{cfg.features}: missing column(s) {keys}")
    sent = [f for f in bundle.features if f in names]
    if not sent:  # a partner may send any subset of the signals (the others are never sent), but not none of them
        raise ValueError(f"{cfg.features}: none of the model's signals is a column (expected some of {bundle.features})")
    cfg.out.parent.mkdir(parents=True, exist_ok=True)
    newest = None if cfg.as_of else newest_day(source)
    seen: set[str] = set()
    totals = {"participants": 0, "scored": 0, "withdrawn": 0}
    consent = _Consent(cfg.partner, cfg.raw_ids) if cfg.partner else None
    carry = pd.DataFrame()
    with pq.ParquetWriter(cfg.out, OUTPUT_SCHEMA) as writer:

        def flush(frame: pd.DataFrame) -> None:
            if frame.empty:
                return
            table = score_frame(bundle, frame, cfg.as_of, newest)
            ids = table.column(PARTICIPANT).to_pylist()
            repeated = seen.intersection(ids)
            if repeated:
                raise ValueError(
                    f"{cfg.features}: rows of participant(s) {sorted(repeated)[:3]} are not contiguous; sort by participant"
                )
            seen.update(ids)
            if consent is not None:
                table, gone = consent.apply(table)
                totals["withdrawn"] += gone
            writer.write_table(table)
            totals["participants"] += table.num_rows
            totals["scored"] += int(pc.sum(pc.equal(table.column("status"), "scored")).as_py() or 0)

        columns = [PARTICIPANT, DATE, *sent]
        batches = source.iter_batches(batch_size=cfg.batch_rows, columns=columns)
        total = -(-source.metadata.num_rows // cfg.batch_rows)
        for batch in progress.track(batches, f"score {source.metadata.num_rows:,} rows", total=total):
            frame = pd.concat([carry, batch.to_pandas()], ignore_index=True) if len(carry) else batch.to_pandas()
            # The last participant of a batch may continue in the next one: hold their rows back.
            last = frame[PARTICIPANT].iloc[-1]
            tail = frame[PARTICIPANT].to_numpy() == last
            carry = frame[tail]
            flush(frame[~tail].reset_index(drop=True))
        flush(carry.reset_index(drop=True))
    return BatchScoreResult(totals["participants"], totals["scored"], time.perf_counter() - started, cfg.out, totals["withdrawn"])
