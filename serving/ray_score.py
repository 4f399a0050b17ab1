"""Batch scoring past one machine on Ray Data: each participant's rows are grouped together and scored by the same
`score_frame` that `earlywarn score` uses. Local mode here; the same code runs on a Ray cluster (`ray.init(address=...)`)."""

from __future__ import annotations

import datetime as dt
import os
from functools import cache
from pathlib import Path
from typing import Any, cast

import pandas as pd

from earlywarn.data.contract import DATE, PARTICIPANT
from earlywarn.data.ingest import open_parquet
from earlywarn.serving.score_file import newest_day, score_frame
from earlywarn.training.bundle import ModelBundle


@cache
def _bundle(model_dir: str) -> ModelBundle:
    return ModelBundle.load(model_dir)  # once per Ray worker process, sha256-checked like everywhere else


def score_with_ray(features: Path, out: Path, model_dir: str, as_of: dt.date | None = None, address: str | None = None) -> int:
    """Score the file on Ray; writes parquet part files under `out`; returns the number of participants."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no telemetry from anything we start
    import ray

    started = not ray.is_initialized()
    ray.init(address=address, ignore_reinit_error=True, include_dashboard=False, log_to_driver=False)
    try:
        columns = [PARTICIPANT, DATE, *_bundle(model_dir).features]
        ds = ray.data.read_parquet(str(features), columns=columns)
        newest = None if as_of else newest_day(open_parquet(features))

        def score_group(frame: pd.DataFrame) -> pd.DataFrame:
            return score_frame(_bundle(model_dir), frame, as_of, newest).to_pandas()

        scored = ds.groupby(PARTICIPANT).map_groups(cast(Any, score_group), batch_format="pandas")
        scored.write_parquet(str(out))
    finally:
        if started:  # a local Ray we started ourselves: stop its processes (a cluster we joined stays up)
            ray.shutdown()
    return int(pd.read_parquet(out).shape[0])
