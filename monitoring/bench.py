"""`make bench` for monitoring: one monitor run over a prediction log of N predictions (time, rows/s, peak memory)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

from data import prediction_log
from data.summary import MISSING_SUFFIX

NOW = dt.datetime(2025, 6, 30, 23, 0, tzinfo=dt.UTC)
PARTNERS = ("clinic-north", "app-south")


def fill_log(
    db_url: str, reference: pd.DataFrame, rows: int, seed: int = 0, batch: int = 20_000, scale: dict[str, float] | None = None
) -> None:
    """A week of daily predictions for rows/7 participants of two partners, inputs resampled from the reference
    (optionally with some signals rescaled, as a device change would)."""
    engine = prediction_log.engine_for(db_url)
    prediction_log.create_schema(engine)
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
        prediction_log.insert_ignoring_duplicates(engine, "predictions", records)


_CHILD = """
import datetime as dt, json, resource, sys, time
from pathlib import Path
from monitoring.monitor import MonitorConfig, monitor
db, ref, out = sys.argv[1:4]
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
run = monitor(MonitorConfig(db_url=db, since=dt.timedelta(days=7), reference=Path(ref), out_dir=Path(out),
                            workspace=Path(out) / "workspace", now=dt.datetime(2025, 6, 30, 23, 30, tzinfo=dt.UTC)))
seconds = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "peak_mb": peak / 1024, "import_mb": base / 1024, "rows": run.overall.n_current,
                  "scopes": len(run.scopes), "verdict": run.verdict}))
"""


def bench_monitor(rows: int, reference: Path, workdir: Path) -> dict[str, float]:
    """Fill a fresh SQLite log with `rows` predictions, then time one monitor run in a clean process."""
    workdir.mkdir(parents=True, exist_ok=True)
    db = workdir / f"monitor-{rows}.db"
    db.unlink(missing_ok=True)
    url = f"sqlite:///{db.resolve()}"
    fill_log(url, pd.read_parquet(reference), rows)
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, url, str(reference), str(workdir / f"monitor-{rows}")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    result["rows_per_s"] = result["rows"] / result["seconds"]
    return result


def table(results: list[dict[str, float]]) -> str:
    lines = ["| logged predictions | scopes | monitor run | rows/s | peak memory (after imports) |", "|---|---|---|---|---|"]
    for r in results:
        lines.append(
            f"| {r['rows']:,.0f} | {r['scopes']:.0f} | {r['seconds']:.1f} s | {r['rows_per_s']:,.0f} | "
            f"{r['peak_mb']:,.0f} MB ({r['import_mb']:,.0f} MB) |"
        )
    return "\n".join(lines)


def main(sizes: list[int]) -> None:
    from monitoring.monitor import champion_reference

    workdir = Path("runs/bench")
    workdir.mkdir(parents=True, exist_ok=True)
    reference = workdir / "reference.parquet"
    champion_reference().to_parquet(reference)
    print(table([bench_monitor(n, reference, workdir) for n in sizes]))


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [100_000])
