"""A synthetic prediction log for notebooks and benchmarks: a week of predictions resampled from a reference sample."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid

import numpy as np
import pandas as pd

from earlywarn.data import store
from earlywarn.data.summary import MISSING_SUFFIX

NOW = dt.datetime(2025, 6, 30, 23, 0, tzinfo=dt.UTC)
PARTNERS = ("clinic-north", "app-south")


def fill_log(
    db_url: str, reference: pd.DataFrame, rows: int, seed: int = 0, batch: int = 20_000, scale: dict[str, float] | None = None
) -> None:
    """A week of daily predictions for rows/7 participants of two partners, inputs resampled from the reference
    (optionally with some signals rescaled, as a device change would)."""
    engine = store.engine_for(db_url)
    store.migrate(engine)
    rng = np.random.default_rng(seed)
    heldout = reference[reference["risk"].notna()]
    names = [c for c in reference.columns if c + MISSING_SUFFIX in reference.columns]
    names = [*names, *(n + MISSING_SUFFIX for n in names), "days_observed"]
    people = max(1, rows // 7)
    for first in range(0, rows, batch):
        n = min(batch, rows - first)
        idx = np.arange(first, first + n)
        inputs = reference[names].iloc[rng.integers(0, len(reference), n)].to_numpy(np.float64)
        for signal, factor in (scale or {}).items():
            inputs[:, names.index(signal)] *= factor
        scores = heldout[["risk", "band"]].iloc[rng.integers(0, len(heldout), n)].to_numpy()
        records = []
        for i, values, (risk, band) in zip(idx, inputs, scores, strict=True):
            person = i % people
            summary = {k: (None if np.isnan(v) else round(float(v), 4)) for k, v in zip(names, values, strict=True)}
            records.append(
                {
                    "record_id": str(uuid.UUID(int=int(rng.integers(0, 2**63)) << 64 | int(i))),
                    "request_id": str(uuid.uuid4()),
                    "created_at": NOW - dt.timedelta(days=int(i // people) % 7, minutes=int(i % 600)),
                    "partner": PARTNERS[person % len(PARTNERS)],
                    # Pseudonymous keys are HMAC hex in the real log; the monitor's participant sampling relies on it.
                    "participant_key": hashlib.sha256(f"bench{person}".encode()).hexdigest()[:40],
                    "model_version": "1",
                    "window_end": (NOW - dt.timedelta(days=int(i // people) % 7)).date(),
                    "status": "scored",
                    "risk": float(risk),
                    "band": band,
                    "days_observed": int(summary.pop("days_observed") or 0),
                    "summary": summary,
                }
            )
        store.insert_ignoring_duplicates(engine, "predictions", records)
