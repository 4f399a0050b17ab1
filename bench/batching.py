"""`make bench` for batching: BentoML's adaptive batching (its CorkDispatcher, as `batchable=True` uses it) beside our
MicroBatcher, driving the same Scorer with the same single-participant jobs from N concurrent callers, in one process."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from earlywarn.data import store
from earlywarn.data.pseudonym import Pseudonymizer
from earlywarn.data.spool import Spool
from earlywarn.serving.batcher import MicroBatcher
from earlywarn.serving.scorer import ScoreJob, Scorer
from earlywarn.serving.store_view import StoreView
from earlywarn.training.tracking import configure, load_bundle


@dataclass(frozen=True)
class BatchBenchConfig:
    features: Path = Path("runs/cohort/features.parquet")
    seconds: float = 10.0
    callers: tuple[int, ...] = (1, 8, 64)
    days: int = 28


def _jobs(table: pd.DataFrame, features: list[str], days: int) -> list[ScoreJob]:
    jobs = []
    for pid, g in table.groupby("participant_id"):
        g = g.tail(days)
        rows = [
            (d.date(), [None if np.isnan(v) else float(v) for v in vals])
            for d, vals in zip(g["date"], g[features].astype(float).to_numpy(), strict=True)
        ]
        as_of = rows[-1][0]
        jobs.append(ScoreJob([(f"bench-{pid}", rows)], as_of, "bench", "bench", explain=True))
    return jobs


def _cork(scorer: Scorer) -> Any:
    """BentoML's dispatcher with `bentoml.api`'s defaults (max_batch_size 100, max_latency_ms 60000)."""
    from bentoml._internal.marshal.dispatcher import CorkDispatcher

    dispatcher: Any = CorkDispatcher(
        max_latency_in_ms=60_000, max_batch_size=100, fallback=lambda: None, get_batch_size=lambda job: len(job.rows)
    )
    return dispatcher(scorer.score_jobs)


async def _drive(submit: Any, jobs: list[ScoreJob], callers: int, seconds: float) -> dict[str, float]:
    latencies: list[float] = []
    stop = time.perf_counter() + seconds

    async def caller(i: int) -> None:
        n = i
        while time.perf_counter() < stop:
            started = time.perf_counter()
            await submit(jobs[n % len(jobs)])
            latencies.append(time.perf_counter() - started)
            n += callers

    began = time.perf_counter()
    await asyncio.gather(*(caller(i) for i in range(callers)))
    lat = np.array(latencies) * 1000
    return {"per_s": len(lat) / (time.perf_counter() - began), "p50": float(np.median(lat)), "p99": float(np.quantile(lat, 0.99))}


def run(cfg: BatchBenchConfig) -> list[dict[str, Any]]:
    configure()
    bundle = load_bundle("champion")
    table = pd.read_parquet(cfg.features)
    jobs = _jobs(table, bundle.features, cfg.days)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        engine = store.engine_for(f"sqlite:///{tmp}/store.db")
        store.migrate(engine)
        spool = Spool(Path(tmp) / "spool", lambda t, r: store.insert_ignoring_duplicates(engine, t, r))
        spool.start()
        scorer = Scorer(bundle, "bench", Pseudonymizer(b"b" * 32), StoreView(engine, spool), lambda *_: None)
        for callers in cfg.callers:
            for name, make in (
                ("MicroBatcher", lambda: MicroBatcher(scorer.score_jobs, lambda j: len(j.rows)).submit),
                ("BentoML CorkDispatcher", lambda: _cork(scorer)),
            ):
                submit = make()
                asyncio.run(_drive(submit, jobs, callers, 1.0))  # warm-up
                rows.append({"batcher": name, "callers": callers} | asyncio.run(_drive(make(), jobs, callers, cfg.seconds)))
        spool.close(timeout=20)
    return rows


def main() -> None:
    os.environ.setdefault("EARLYWARN_MODE", "demo")  # the bundle from `make run` is signed with the demo key
    rows = run(BatchBenchConfig())
    print(f"# batching, {dt.date.today()}: single-participant jobs of 28 days, same Scorer, in one process")
    print("| batcher | concurrent callers | jobs/s | p50 ms | p99 ms |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['batcher']} | {r['callers']} | {r['per_s']:.0f} | {r['p50']:.1f} | {r['p99']:.1f} |")


if __name__ == "__main__":
    main()
